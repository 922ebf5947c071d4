internal import CFathomBPF
import FathomModel
import Foundation
import Logging
import Synchronization

/// Settings of TLS plaintext capture.
public struct TLSCaptureConfiguration: Sendable {
    /// Plaintext bytes copied per TLS call; the rest is counted and flagged as truncated (at most 4 MiB).
    public var maxBytesPerCall: UInt32 = 1 << 20
    /// Every process is scanned again this often, for libraries loaded with dlopen and probes nobody uses any more.
    public var rescanSeconds: Double = 30
    /// How long after an exec its process is scanned: at once (its executable is mapped: static OpenSSL such as
    /// Node's is hooked before the program gets far), then once the dynamic loader has mapped its libraries, then
    /// later for libraries the program loads itself.
    public var execScanDelays: [Double] = [0, 0.15, 0.9]
    /// Scan processes and follow execs; off, only files hooked explicitly are probed (the self-test's).
    public var discover = true

    public init() {}
}

/// TLS plaintext through uprobes on OpenSSL/BoringSSL (bpf/tls.bpf.c), recorded through the packet capture's rings
/// and drainer as synthesized TCP segments of source `ebpf_tls`. One set of probes per file (device + inode).
public final class TLSCapture: MetricsSource, @unchecked Sendable {
    public let configuration: TLSCaptureConfiguration
    private let capture: BPFCapture
    private let logger: Logger
    private let lock = NSLock()
    private var object: OpaquePointer?
    private var tracepointLinks: [OpaquePointer] = []
    private var execRing: OpaquePointer?
    private let lossesFD: Int32
    /// Probes per hooked file, keyed by device + inode.
    private var hookedFiles: [FileKey: HookedFile] = [:]
    /// What each file offered when inspected, with the file's identity then, so each file is read once: also after
    /// its last process ended, up to `rememberedVerdicts` files (programs that run again and again, such as probes
    /// and cron jobs, are not read at each start).
    private var verdicts: [FileKey: (verdict: TLSFileVerdict, identity: FileIdentity?)] = [:]
    static let rememberedVerdicts = 4096
    private var targetsByPID: [Int32: [TLSTarget]] = [:]
    /// The agent's own executable (it carries BoringSSL through swift-nio-ssl): never hooked. Its TLS is the agent's
    /// own traffic (the Kubernetes API), left out like calls to its API, and no probe is written into the code the
    /// agent runs (or into any `fathom` command started beside it, which maps the same file).
    private let ownExecutable: FileKey? = {
        let (executable, files) = TLSDiscovery.mappedFiles(pid: getpid())
        return files.first { $0.path == executable }.map { FileKey(device: $0.device, inode: $0.inode) }
    }()
    // The follower thread's state; `pendingExecs` is touched only on that thread (the ring callback runs on it).
    private var pendingExecs: [(pid: Int32, due: Double)] = []
    private var running = false
    private let stopped = NSCondition()
    private var threadDone = true
    /// exec events received from the kernel.
    let execEvents = Atomic<UInt64>(0)

    struct FileKey: Hashable {
        var device: String
        var inode: UInt64
    }

    struct HookedFile {
        var path: String
        var links: [OpaquePointer]
        var symbols: [String]
    }

    /// Loads the TLS programs, sharing `capture`'s rings (and so its drainer and sink). Nothing is attached yet.
    public init(sharing capture: BPFCapture, configuration: TLSCaptureConfiguration, logger: Logger) throws {
        self.capture = capture
        self.configuration = configuration
        self.logger = logger
        KernelFeatures.mountTracefsIfMissing()
        var objectSize = 0
        let objectBytes = fathom_tls_bpf_object(&objectSize)
        guard let obj = fathom_bpf_open(objectBytes, objectSize, "fathom_tls") else {
            throw BPFCaptureError.libbpf("cannot open the embedded TLS BPF object", errno)
        }
        var loaded = false
        defer { if !loaded { bpf_object__close(obj) } }
        let cap = min(configuration.maxBytesPerCall, UInt32(FATHOM_TLS_CHUNK) * UInt32(FATHOM_TLS_MAX_CHUNKS))
        var config = fathom_tls_config(max_bytes_per_call: cap, wakeup_bytes: capture.configuration.wakeupBytes)
        let rc = fathom_bpf_set_rodata(obj, "tls_config", &config, MemoryLayout<fathom_tls_config>.size)
        guard rc == 0 else { throw BPFCaptureError.libbpf("cannot set tls_config", -rc) }
        guard let rings = bpf_object__find_map_by_name(obj, "rings") else {
            throw BPFCaptureError.libbpf("the TLS object has no `rings` map", POSIXErrorCode.ENOENT.rawValue)
        }
        let reuse = bpf_map__reuse_fd(rings, capture.ringsMapFD)
        guard reuse == 0 else { throw BPFCaptureError.libbpf("cannot share the capture's rings", -reuse) }
        let loadError = bpf_object__load(obj)
        guard loadError == 0 else { throw BPFCaptureError.libbpf("the kernel refused the TLS programs", -loadError) }
        guard let losses = bpf_object__find_map_by_name(obj, "tls_losses"),
            let exec = bpf_object__find_map_by_name(obj, "exec_events")
        else { throw BPFCaptureError.libbpf("the TLS object lacks its maps", POSIXErrorCode.ENOENT.rawValue) }
        lossesFD = bpf_map__fd(losses)
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let ring = ring_buffer__new(bpf_map__fd(exec), Self.onExec, context, nil) else {
            throw BPFCaptureError.libbpf("cannot open the exec event ring", errno)
        }
        execRing = ring
        object = obj
        loaded = true
    }

    deinit {
        stop()
        if let execRing { ring_buffer__free(execRing) }
        if let object { bpf_object__close(object) }
    }

    /// Attaches the syscall and exec tracepoints, hooks every TLS library already mapped, then follows new processes.
    public func start() throws {
        lock.lock()
        guard let obj = object, tracepointLinks.isEmpty else {
            lock.unlock()
            return
        }
        do {
            var prog = bpf_object__next_program(obj, nil)
            while let p = prog {
                let section = String(cString: bpf_program__section_name(p))
                if section.hasPrefix("tracepoint/") {
                    guard let link = bpf_program__attach(p) else {
                        throw BPFCaptureError.libbpf("cannot attach \(String(cString: bpf_program__name(p)))", errno)
                    }
                    tracepointLinks.append(link)
                }
                prog = bpf_object__next_program(obj, p)
            }
        } catch {
            for link in tracepointLinks { bpf_link__destroy(link) }
            tracepointLinks.removeAll()
            lock.unlock()
            throw error
        }
        lock.unlock()
        if configuration.discover { scanAll() }
        stopped.lock()
        running = true
        threadDone = false
        stopped.unlock()
        let thread = Thread { [self] in self.follow() }
        thread.name = "fathom-tls"
        thread.start()
        logger.info("TLS capture attached", metadata: ["files": "\(hookedFileCount)"])
    }

    /// Detaches every probe. Call before the packet capture stops, so its drainer's last pass takes the last records.
    public func stop() {
        stopped.lock()
        running = false
        while !threadDone { stopped.wait() }
        stopped.unlock()
        lock.lock()
        defer { lock.unlock() }
        for file in hookedFiles.values { for link in file.links { bpf_link__destroy(link) } }
        hookedFiles.removeAll()
        for link in tracepointLinks { bpf_link__destroy(link) }
        tracepointLinks.removeAll()
    }

    /// Every process × TLS library found, hooked or not and why, by pid.
    public func targets() -> [TLSTarget] {
        lock.lock()
        defer { lock.unlock() }
        return targetsByPID.keys.sorted().flatMap { targetsByPID[$0] ?? [] }
    }

    var hookedFileCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return hookedFiles.count
    }

    // MARK: Discovery

    /// Scans every process, then removes the probes of files no process maps any more.
    func scanAll() {
        var seen = Set<FileKey>()
        var fresh: [Int32: [TLSTarget]] = [:]
        for pid in TLSDiscovery.pids() {
            let (targets, keys) = scan(pid: pid)
            seen.formUnion(keys)
            if !targets.isEmpty { fresh[pid] = targets }
        }
        lock.lock()
        targetsByPID = fresh
        for (key, file) in hookedFiles where !seen.contains(key) {
            for link in file.links { bpf_link__destroy(link) }
            hookedFiles[key] = nil
            logger.info("TLS probes removed: no process maps the file any more", metadata: ["file": "\(file.path)"])
        }
        if verdicts.count > Self.rememberedVerdicts { verdicts = verdicts.filter { seen.contains($0.key) } }
        lock.unlock()
    }

    /// Scans one process (after its exec) and records its targets.
    func rescan(pid: Int32) {
        let (targets, _) = scan(pid: pid)
        lock.lock()
        targetsByPID[pid] = targets.isEmpty ? nil : targets
        lock.unlock()
    }

    /// Hooks the TLS files one process maps; returns its targets and the keys of every file it maps.
    private func scan(pid: Int32) -> ([TLSTarget], Set<FileKey>) {
        let (executable, files) = TLSDiscovery.mappedFiles(pid: pid)
        var targets: [TLSTarget] = []
        var keys = Set<FileKey>()
        for file in files {
            let key = FileKey(device: file.device, inode: file.inode)
            keys.insert(key)
            let byName = TLSDiscovery.libraryKind(path: file.path)
            // Libraries are inspected when their name says TLS; the executable always (static OpenSSL, Go).
            guard byName != nil || file.path == executable else { continue }
            if key == ownExecutable {
                targets.append(TLSTarget(pid: pid, executable: executable, library: file.path, kind: "fathom", hooked: false,
                                         detail: "fathom itself: its own TLS is not recorded"))
                continue
            }
            // Through the process's root, so a file inside a container's mount namespace is found.
            let reachable = "/proc/\(pid)/root" + file.path
            let identity = TLSDiscovery.identity(path: reachable)
            lock.lock()
            var verdict = verdicts[key].flatMap { $0.identity == identity ? $0.verdict : nil }
            lock.unlock()
            if verdict == nil {
                let inspected = TLSDiscovery.inspect(path: reachable, kind: byName)
                lock.lock()
                verdicts[key] = (inspected, identity)
                lock.unlock()
                verdict = inspected
            }
            guard let verdict, verdict.reason != nil || !verdict.probes.isEmpty else { continue }
            var target = TLSTarget(
                pid: pid, executable: executable, library: file.path, kind: verdict.kind, hooked: false,
                detail: verdict.reason ?? "")
            if verdict.reason == nil {
                switch hook(key, path: reachable, displayPath: file.path, verdict.probes) {
                case .success(let symbols):
                    target.hooked = true
                    target.detail = symbols.joined(separator: ",")
                case .failure(let error):
                    target.detail = "\(error)"
                }
            }
            targets.append(target)
        }
        return (targets, keys)
    }

    /// Attaches the probes of one file once; later calls return what was hooked. A function is hooked when all its
    /// probes are attached (a Go function without its return probes would leave calls in flight).
    private func hook(_ key: FileKey, path: String, displayPath: String, _ probes: [TLSProbe])
        -> Result<[String], BPFCaptureError>
    {
        lock.lock()
        defer { lock.unlock() }
        if let hooked = hookedFiles[key] { return .success(hooked.symbols) }
        guard let obj = object else { return .failure(BPFCaptureError(description: "TLS capture stopped", log: "")) }
        var links: [OpaquePointer] = []
        var linksByFunction: [String: [OpaquePointer]] = [:]
        var failed = Set<String>()
        var lastError: BPFCaptureError?
        for probe in probes where !failed.contains(probe.function) {
            guard let prog = bpf_object__find_program_by_name(obj, probe.program),
                let link = fathom_bpf_attach_uprobe(prog, path, nil, Int(probe.fileOffset), probe.returnProbe ? 1 : 0)
            else {
                lastError = BPFCaptureError.libbpf("cannot attach \(probe.program) to \(probe.function) in \(displayPath)", errno)
                failed.insert(probe.function)
                continue
            }
            linksByFunction[probe.function, default: []].append(link)
        }
        // Each function once: a function has several probes, and destroying a failed function's links once per
        // probe freed them twice (the agent crashed when a process exited between two probes of one function).
        var symbols: [String] = []
        var settled = Set<String>()
        for probe in probes where settled.insert(probe.function).inserted {
            guard let functionLinks = linksByFunction[probe.function] else { continue }
            if failed.contains(probe.function) {
                for link in functionLinks { bpf_link__destroy(link) }
            } else {
                links += functionLinks
                symbols.append(probe.function)
            }
        }
        if symbols.isEmpty {
            return .failure(lastError ?? BPFCaptureError(description: "no TLS function to hook", log: ""))
        }
        hookedFiles[key] = HookedFile(path: displayPath, links: links, symbols: symbols)
        logger.info("TLS probes attached", metadata: ["file": "\(displayPath)", "symbols": "\(symbols.joined(separator: ","))",
                                                      "probes": "\(links.count)"])
        return .success(symbols)
    }

    /// Hooks code of this process's own executable given by address (the self-test's stand-ins): each probe's
    /// `fileOffset` is taken as an address and resolved to its file offset through /proc/self/maps.
    func hookOwnCode(_ probesAtAddresses: [TLSProbe]) throws -> [String] {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else {
            throw BPFCaptureError(description: "cannot read /proc/self/maps", log: "")
        }
        var file: (key: FileKey, path: String)?
        var probes: [TLSProbe] = []
        for var probe in probesAtAddresses {
            for line in maps.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                guard fields.count == 6, fields[1].contains("x") else { continue }
                let bounds = fields[0].split(separator: "-")
                guard bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16),
                    let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]),
                    (start..<end).contains(probe.fileOffset)
                else { continue }
                let path = String(fields[5].drop { $0 == " " })
                file = (FileKey(device: String(fields[3]), inode: inode), path)
                probe.fileOffset = probe.fileOffset - start + offset
                probes.append(probe)
            }
        }
        guard let file else { throw BPFCaptureError(description: "the functions are not in a mapped file", log: "") }
        switch hook(file.key, path: file.path, displayPath: file.path, probes) {
        case .success(let hooked): return hooked
        case .failure(let error): throw error
        }
    }

    /// The programs (and whether each is a return probe) for an unprefixed function name. Writes get a return probe
    /// only in libraries with memory BIOs (see tls_ssl_write_return): elsewhere the nested syscall emits them.
    static func programs(for function: String, memoryBIO: Bool) -> [(String, Bool)] {
        switch function {
        case "SSL_write": [("tls_ssl_write", false)] + (memoryBIO ? [("tls_ssl_write_return", true)] : [])
        case "SSL_write_ex": [("tls_ssl_write_ex", false)] + (memoryBIO ? [("tls_ssl_write_ex_return", true)] : [])
        case "SSL_read": [("tls_ssl_read", false), ("tls_ssl_read_return", true)]
        case "SSL_read_ex": [("tls_ssl_read_ex", false), ("tls_ssl_read_ex_return", true)]
        case "SSL_set_fd": [("tls_ssl_set_fd", false)]
        default: []
        }
    }

    // MARK: Following new processes

    private func follow() {
        var lastFullScan = Double(Clock.nanoseconds(CLOCK_MONOTONIC)) / 1e9
        while true {
            stopped.lock()
            let keepGoing = running
            stopped.unlock()
            guard keepGoing else { break }
            if let execRing { _ = ring_buffer__poll(execRing, 100) }
            let now = Double(Clock.nanoseconds(CLOCK_MONOTONIC)) / 1e9
            let due = pendingExecs.filter { $0.due <= now }
            pendingExecs.removeAll { $0.due <= now }
            for pid in Set(due.map(\.pid)) { rescan(pid: pid) }
            if configuration.discover, now - lastFullScan >= configuration.rescanSeconds {
                scanAll()
                lastFullScan = now
            }
        }
        stopped.lock()
        threadDone = true
        stopped.broadcast()
        stopped.unlock()
    }

    fileprivate func execed(pid: Int32) {
        execEvents.add(1, ordering: .relaxed)
        guard configuration.discover else { return }
        let now = Double(Clock.nanoseconds(CLOCK_MONOTONIC)) / 1e9
        for delay in configuration.execScanDelays { pendingExecs.append((pid, now + delay)) }
    }

    private static let onExec: ring_buffer_sample_fn = { context, data, size in
        guard let context, let data, size >= MemoryLayout<fathom_exec_event>.size else { return 0 }
        let event = data.loadUnaligned(as: fathom_exec_event.self)
        Unmanaged<TLSCapture>.fromOpaque(context).takeUnretainedValue().execed(pid: Int32(bitPattern: event.pid))
        return 0
    }

    // MARK: Metrics

    /// TLS records each CPU's ring had no room for.
    public func ringLosses() -> [UInt64] {
        lock.lock()
        defer { lock.unlock() }
        guard object != nil else { return [] }
        var key: UInt32 = 0
        var values = [UInt64](repeating: 0, count: Int(libbpf_num_possible_cpus()))
        guard bpf_map_lookup_elem(lossesFD, &key, &values) == 0 else { return [] }
        return values
    }

    public func metrics() -> [Metric] {
        var result = capture.tlsCounters.metrics()
        result.append(
            Metric(
                "fathom_tls_ring_lost_records_total", .counter, "TLS records lost because a CPU's ring was full.",
                ringLosses().enumerated().map { (labels: [("cpu", String($0.offset))], value: Double($0.element)) }))
        let all = targets()
        result.append(Metric("fathom_tls_hooked_files", .gauge, "Files carrying TLS code with probes attached.",
                             value: Double(hookedFileCount)))
        result.append(Metric("fathom_tls_unhooked_targets", .gauge, "Processes with a TLS library that is not hooked.",
                             value: Double(all.filter { !$0.hooked }.count)))
        return result
    }

    /// Load statistics of the TLS programs, as `BPFCapture.programStatistics` gives them.
    public func programNames() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        guard let obj = object else { return [] }
        var names: [String] = []
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            names.append(String(cString: bpf_program__name(p)))
            prog = bpf_object__next_program(obj, p)
        }
        return names
    }
}
