internal import CFathomBPF
import FathomModel
import Foundation

/// Drains the per-CPU rings into a sink on a thread of its own. The programs wake it only past a fill threshold, so
/// it also consumes every ring on a short timer; records are handed to the sink straight from ring memory, with no
/// allocation per packet.
final class RingDrainer: @unchecked Sendable {
    private let sinkOwner: PacketSink
    /// The same sink, without reference counting on every record; `sinkOwner` keeps it alive.
    private unowned(unsafe) let sink: PacketSink
    private let counters: CaptureCounters
    /// Counted per record in plain fields, published to `counters` once per drain pass: an atomic add per record
    /// cost more than the rest of the bookkeeping together.
    private var pending = CaptureCounters.Pending()
    private let intervalMilliseconds: Int32
    /// TLS plaintext records share the rings; they become synthesized TCP segments.
    private let tlsSegments: TLSSegmentSynthesizer
    private var ringBuffer: OpaquePointer?
    private let running = NSCondition()
    private var state: State = .idle
    /// Wall clock minus CLOCK_MONOTONIC, refreshed about once a second by the drain thread only.
    fileprivate var clockOffset = Clock.monotonicToRealtimeOffset()
    private var lastOffsetRefresh = Clock.nanoseconds(CLOCK_MONOTONIC)

    private enum State { case idle, running, stopping, stopped }

    init(
        ringFDs: [Int32], sink: PacketSink, counters: CaptureCounters, tlsCounters: TLSCounters,
        intervalMilliseconds: Int32
    ) throws {
        self.sinkOwner = sink
        self.sink = sink
        self.counters = counters
        self.tlsSegments = TLSSegmentSynthesizer(counters: tlsCounters)
        self.intervalMilliseconds = intervalMilliseconds
        guard let first = ringFDs.first else { throw BPFCaptureError(description: "no ring buffers", log: "") }
        // Unretained: the ring buffer is freed in deinit, so it never outlives the drainer.
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let rb = ring_buffer__new(first, RingDrainer.onRecord, context, nil) else {
            throw BPFCaptureError(description: "cannot open the ring buffers: \(String(cString: strerror(errno)))", log: "")
        }
        ringBuffer = rb
        for fd in ringFDs.dropFirst() where ring_buffer__add(rb, fd, RingDrainer.onRecord, context) != 0 {
            throw BPFCaptureError(description: "cannot add a ring buffer: \(String(cString: strerror(errno)))", log: "")
        }
    }

    deinit { if let ringBuffer { ring_buffer__free(ringBuffer) } }

    func start() {
        running.lock()
        guard state == .idle else {
            running.unlock()
            return
        }
        state = .running
        running.unlock()
        let thread = Thread { [self] in self.run() }
        thread.name = "fathom-drain"
        thread.start()
    }

    /// Returns once the thread has made its last pass over every ring and the sink has been flushed.
    func stop() {
        running.lock()
        if state == .running {
            state = .stopping
            while state != .stopped { running.wait() }
        }
        running.unlock()
    }

    private func run() {
        while true {
            running.lock()
            let stopping = state == .stopping
            running.unlock()
            if let ringBuffer {
                _ = ring_buffer__poll(ringBuffer, intervalMilliseconds)
                _ = ring_buffer__consume(ringBuffer)
            }
            let now = Clock.nanoseconds(CLOCK_MONOTONIC)
            if now - lastOffsetRefresh > 1_000_000_000 {
                clockOffset = Clock.monotonicToRealtimeOffset()
                lastOffsetRefresh = now
            }
            counters.publish(&pending)
            sink.tick(nowNanoseconds: UInt64(now + clockOffset))
            if stopping { break }
        }
        running.lock()
        state = .stopped
        running.broadcast()
        running.unlock()
    }

    @inline(__always)
    fileprivate func deliver(_ record: UnsafeRawBufferPointer) {
        if RingRecord.kind(of: record) == UInt8(FATHOM_RECORD_TLS.rawValue) {
            if !tlsSegments.deliver(record, clockOffsetNanoseconds: clockOffset, to: sink) {
                pending.malformedRecords &+= 1
            }
            return
        }
        guard let (metadata, bytes) = RingRecord.decode(record, clockOffsetNanoseconds: clockOffset) else {
            pending.malformedRecords &+= 1
            return
        }
        pending.count(captured: bytes.count, original: metadata.originalLength)
        sink.append(metadata, bytes)
    }

    private static let onRecord: ring_buffer_sample_fn = { context, data, size in
        guard let context, let data else { return 0 }
        // The ring buffer never outlives the drainer: no retain/release per record.
        Unmanaged<RingDrainer>.fromOpaque(context)._withUnsafeGuaranteedRef {
            $0.deliver(UnsafeRawBufferPointer(start: data, count: size))
        }
        return 0
    }
}
