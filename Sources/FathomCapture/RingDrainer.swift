internal import CFathomBPF
import FathomModel
import Foundation

/// Drains the per-CPU rings into a sink on a thread of its own. The programs wake it only past a fill threshold, so
/// it also drains on a short timer. Each pass merges the rings in time order: packets of one connection are recorded
/// on whichever CPU handled them, and a response must not reach the recording before its request. Records are handed
/// to the sink straight from ring memory, with no allocation per packet.
final class RingDrainer: @unchecked Sendable {
    /// Each drain pass holds it in a local constant and hands it down: a call through a stored reference costs a
    /// retain and a release per record.
    private let sink: PacketSink
    private let counters: CaptureCounters
    /// Counted per record in plain fields, published to `counters` once per drain pass: an atomic add per record
    /// cost more than the rest of the bookkeeping together.
    private var pending = CaptureCounters.Pending()
    private let intervalMilliseconds: Int32
    /// TLS plaintext records share the rings; they become synthesized TCP segments.
    private let tlsSegments: TLSSegmentSynthesizer
    private var rings: [OpaquePointer] = []
    private var epollFD: Int32 = -1
    private let running = NSCondition()
    private var state: State = .idle
    /// Wall clock minus CLOCK_MONOTONIC, refreshed about once a second by the drain thread only.
    fileprivate var clockOffset = Clock.monotonicToRealtimeOffset()
    private var lastOffsetRefresh = Clock.nanoseconds(CLOCK_MONOTONIC)

    private enum State { case idle, running, stopping, stopped }

    init(
        ringFDs: [Int32], ringBytes: UInt32, sink: PacketSink, counters: CaptureCounters, tlsCounters: TLSCounters,
        intervalMilliseconds: Int32
    ) throws {
        self.sink = sink
        self.counters = counters
        self.tlsSegments = TLSSegmentSynthesizer(counters: tlsCounters)
        self.intervalMilliseconds = intervalMilliseconds
        guard !ringFDs.isEmpty else { throw BPFCaptureError(description: "no ring buffers", log: "") }
        for fd in ringFDs {
            guard let ring = fathom_ring_open(fd, ringBytes) else {
                throw BPFCaptureError(description: "cannot map a ring buffer: \(String(cString: strerror(errno)))", log: "")
            }
            rings.append(ring)
        }
        epollFD = fathom_rings_epoll(ringFDs, Int32(ringFDs.count))
        guard epollFD >= 0 else {
            throw BPFCaptureError(description: "cannot watch the ring buffers: \(String(cString: strerror(-epollFD)))", log: "")
        }
    }

    deinit {
        for ring in rings { fathom_ring_close(ring) }
        if epollFD >= 0 { close(epollFD) }
    }

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

    /// The drainer's nice value: under CPU contention the rings must be emptied before they fill (a lost record is
    /// lost for good), while dissection and the rest of the agent can lag and catch up from the recording.
    static let threadNice: Int32 = -5

    private func run() {
        // Refused without CAP_SYS_NICE: the drainer then runs at the agent's own priority, which also works.
        _ = fathom_thread_set_nice(Self.threadNice)
        while true {
            running.lock()
            let stopping = state == .stopping
            running.unlock()
            _ = fathom_rings_wait(epollFD, intervalMilliseconds)
            drainPass()
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

    /// One pass: fixes each ring's end, then delivers the oldest head of all rings until every ring is empty up to
    /// its end. Only rings holding records take part, so a pass costs a comparison per busy CPU per record.
    private func drainPass() {
        let sink = sink
        var heads: [(ring: OpaquePointer, record: UnsafeRawBufferPointer, timestamp: UInt64)] = []
        heads.reserveCapacity(rings.count)
        for ring in rings {
            fathom_ring_snapshot(ring)
            if let head = Self.peek(ring) { heads.append((ring, head, Self.timestamp(head))) }
        }
        while !heads.isEmpty {
            var oldest = 0
            for i in 1..<heads.count where heads[i].timestamp < heads[oldest].timestamp { oldest = i }
            deliver(heads[oldest].record, to: sink)
            let ring = heads[oldest].ring
            fathom_ring_release(ring)
            if let next = Self.peek(ring) {
                heads[oldest] = (ring, next, Self.timestamp(next))
            } else {
                heads.swapAt(oldest, heads.count - 1)
                heads.removeLast()
            }
        }
    }

    @inline(__always)
    private static func peek(_ ring: OpaquePointer) -> UnsafeRawBufferPointer? {
        var length: UInt32 = 0
        guard let record = fathom_ring_peek(ring, &length) else { return nil }
        return UnsafeRawBufferPointer(start: record, count: Int(length))
    }

    /// Every record kind starts with its CLOCK_MONOTONIC stamp; a record too short to have one goes first (and is
    /// counted as malformed on delivery).
    @inline(__always)
    private static func timestamp(_ record: UnsafeRawBufferPointer) -> UInt64 {
        record.count >= 8 ? record.loadUnaligned(as: UInt64.self) : 0
    }

    @inline(__always)
    private func deliver(_ record: UnsafeRawBufferPointer, to sink: PacketSink) {
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
}
