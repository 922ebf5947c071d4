internal import CFathomBPF
import FathomModel
import Foundation
import Logging
import Synchronization

/// Process events from bpf/process.bpf.c (exec, exit, TCP connect and listen), read from their ring on a thread of
/// its own and handed to a handler in the order the kernel wrote them.
public final class ProcessTracer: MetricsSource, @unchecked Sendable {
    private let logger: Logger
    private let lock = NSLock()
    private var object: OpaquePointer?
    private var links: [OpaquePointer] = []
    private var ring: OpaquePointer?
    private let lossesFD: Int32
    private var handler: (@Sendable (ProcessEvent) -> Void)?
    /// Wall clock minus monotonic clock, refreshed on every poll so NTP steps are followed.
    private var clockOffset = Clock.monotonicToRealtimeOffset()
    private let running = Mutex(false)
    private let finished = NSCondition()
    private var threadDone = true
    private let received = Atomic<UInt64>(0)

    /// Loads the programs; nothing is attached yet.
    public init(logger: Logger) throws {
        self.logger = logger
        KernelFeatures.mountTracefsIfMissing()
        var size = 0
        let bytes = fathom_process_bpf_object(&size)
        guard let obj = fathom_bpf_open(bytes, size, "fathom_process") else {
            throw BPFCaptureError.libbpf("cannot open the embedded process BPF object", errno)
        }
        var loaded = false
        defer { if !loaded { bpf_object__close(obj) } }
        let loadError = bpf_object__load(obj)
        guard loadError == 0 else { throw BPFCaptureError.libbpf("the kernel refused the process programs", -loadError) }
        guard let events = bpf_object__find_map_by_name(obj, "process_events"),
            let losses = bpf_object__find_map_by_name(obj, "process_losses")
        else { throw BPFCaptureError.libbpf("the process object lacks its maps", POSIXErrorCode.ENOENT.rawValue) }
        lossesFD = bpf_map__fd(losses)
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let ring = ring_buffer__new(bpf_map__fd(events), Self.onEvent, context, nil) else {
            throw BPFCaptureError.libbpf("cannot open the process event ring", errno)
        }
        self.ring = ring
        object = obj
        loaded = true
    }

    deinit {
        stop()
        if let ring { ring_buffer__free(ring) }
        if let object { bpf_object__close(object) }
    }

    /// Attaches the tracepoints and starts handing events to `handler` (on the tracer's thread).
    public func start(handler: @escaping @Sendable (ProcessEvent) -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let obj = object, links.isEmpty else { return }
        self.handler = handler
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            guard let link = bpf_program__attach(p) else {
                let error = BPFCaptureError.libbpf("cannot attach \(String(cString: bpf_program__name(p)))", errno)
                for link in links { bpf_link__destroy(link) }
                links.removeAll()
                throw error
            }
            links.append(link)
            prog = bpf_object__next_program(obj, p)
        }
        running.withLock { $0 = true }
        finished.lock()
        threadDone = false
        finished.unlock()
        let thread = Thread { [self] in self.poll() }
        thread.name = "fathom-process"
        thread.start()
    }

    /// Detaches the tracepoints after handing over the events already in the ring. Idempotent.
    public func stop() {
        running.withLock { $0 = false }
        finished.lock()
        while !threadDone { finished.wait() }
        finished.unlock()
        lock.lock()
        defer { lock.unlock() }
        for link in links { bpf_link__destroy(link) }
        links.removeAll()
    }

    private func poll() {
        while running.withLock({ $0 }) {
            clockOffset = Clock.monotonicToRealtimeOffset()
            if let ring { _ = ring_buffer__poll(ring, 100) }
        }
        if let ring { _ = ring_buffer__consume(ring) }
        finished.lock()
        threadDone = true
        finished.broadcast()
        finished.unlock()
    }

    private func deliver(_ raw: fathom_process_event) {
        received.add(1, ordering: .relaxed)
        guard let kind = ProcessEvent.Kind(rawValue: raw.kind) else { return }
        let wall = { (monotonic: UInt64) in UInt64(max(0, Int64(monotonic) + self.clockOffset)) }
        var event = ProcessEvent(
            kind: kind, timestampNanoseconds: wall(raw.timestamp_ns), startNanoseconds: wall(raw.start_ns),
            pid: Int32(bitPattern: raw.pid), parentPID: Int32(bitPattern: raw.ppid), cgroupID: raw.cgroup_id,
            command: Self.string(raw.comm))
        switch kind {
        case .exec:
            event.filename = Self.string(raw.filename)
        case .connect, .listen:
            event.localIP = Self.address(raw.local_addr, family: raw.family)
            event.localPort = raw.local_port
            event.remoteIP = Self.address(raw.remote_addr, family: raw.family)
            event.remotePort = raw.remote_port
        case .exit:
            break
        }
        handler?(event)
    }

    private static let onEvent: ring_buffer_sample_fn = { context, data, size in
        guard let context, let data, size >= MemoryLayout<fathom_process_event>.size else { return 0 }
        let raw = data.loadUnaligned(as: fathom_process_event.self)
        Unmanaged<ProcessTracer>.fromOpaque(context).takeUnretainedValue().deliver(raw)
        return 0
    }

    /// A fixed-size C string field (a tuple of CChar) up to its NUL.
    static func string<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// An address in network order (IPv4 in the first word) as text.
    static func address(_ words: (UInt32, UInt32, UInt32, UInt32), family: UInt16) -> String? {
        var words = words
        let af = family == 10 ? AF_INET6 : family == 2 ? AF_INET : -1
        guard af >= 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(af, &words, &text, socklen_t(text.count)) != nil else { return nil }
        return String(cString: text)
    }

    /// Events the ring had no room for (summed over CPUs).
    public var losses: UInt64 {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { return 0 }
        var values = [UInt64](repeating: 0, count: cpus)
        var key: UInt32 = 0
        guard bpf_map_lookup_elem(lossesFD, &key, &values) == 0 else { return 0 }
        return values.reduce(0, +)
    }

    public func metrics() -> [Metric] {
        [
            Metric("fathom_process_events_total", .counter, "Process events (exec, exit, connect, listen) received.",
                   value: Double(received.load(ordering: .relaxed))),
            Metric("fathom_process_events_lost_total", .counter, "Process events lost because their ring was full.",
                   value: Double(losses)),
        ]
    }
}
