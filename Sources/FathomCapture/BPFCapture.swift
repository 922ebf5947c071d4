internal import CFathomBPF
import FathomModel
import Foundation
import Logging
import Synchronization

/// Settings of the eBPF capture path.
public struct BPFCaptureConfiguration: Sendable {
    /// Bytes kept per packet (at most 65535).
    public var snapLength: UInt32 = 65535
    /// Size of each CPU's ring buffer (a power of two).
    public var ringBytesPerCPU: UInt32 = 8 << 20
    /// A ring wakes the drainer only when it holds this much; otherwise the drain timer picks records up.
    public var wakeupBytes: UInt32 = 512 << 10
    /// The drain timer.
    public var drainIntervalMilliseconds: Int32 = 10
    /// Interfaces to capture with tc clsact as well (traffic that never reaches a local socket).
    public var interfaces: [String] = []
    /// cgroup v2 mount; nil finds it in /proc/self/mountinfo.
    public var cgroupRoot: String?

    public init() {}
}

public struct BPFCaptureError: Error, CustomStringConvertible {
    public var description: String
    /// The tail of libbpf's messages (the verifier's reason, when it refused a program).
    public var log: String

    /// One line for logs and /healthz: the error and libbpf's last two messages.
    public var summary: String {
        let tail = log.split(separator: "\n").suffix(2).joined(separator: " | ")
        return tail.isEmpty ? description : "\(description) (libbpf: \(tail))"
    }

    /// `what` failed with errno `code`, with libbpf's latest messages (taken, so the next error starts afresh).
    static func libbpf(_ what: String, _ code: Int32) -> BPFCaptureError {
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let n = fathom_bpf_take_log(&buffer, buffer.count)
        let log = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return BPFCaptureError(description: "\(what): \(String(cString: strerror(code)))", log: log)
    }
}

/// Targeting in the kernel: cgroups (and their descendants) to include or exclude.
public enum CgroupTarget: UInt8, Sendable {
    case include = 1
    case exclude = 2
}

/// Packet capture with the programs of bpf/capture.bpf.c: cgroup_skb at the cgroup v2 root (every local socket, all
/// network namespaces), optionally tc on named interfaces, into one ring buffer per CPU drained by a thread.
public final class BPFCapture: PacketCapture, @unchecked Sendable {
    public let source = CaptureSource.ebpf
    public let configuration: BPFCaptureConfiguration
    /// The cgroup v2 mount the programs are attached at.
    public let cgroupRoot: String
    private let logger: Logger
    // libbpf handles; touched only under `lock`.
    private let lock = NSLock()
    private var object: OpaquePointer?
    private var links: [OpaquePointer] = []
    private var tcAttachments: [(ifindex: Int32, ingress: Bool)] = []
    private var ringFDs: [Int32] = []
    private var drainer: RingDrainer?
    private let counters = CaptureCounters()
    /// Counts of the TLS records the drainer turns into segments (TLSCapture reports them).
    let tlsCounters = TLSCounters()
    private let settingsFD: Int32
    private let targetsFD: Int32
    private let lossesFD: Int32
    /// The `rings` array of maps, handed to the TLS programs so plaintext shares the packets' rings and drainer.
    let ringsMapFD: Int32
    private let possibleCPUs: Int
    private var paused = false
    /// cgroups in the `targets` map; the programs skip targeting altogether while it is empty.
    private var targets: [UInt64: CgroupTarget] = [:]

    public init(configuration: BPFCaptureConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        fathom_bpf_capture_log()
        guard let root = configuration.cgroupRoot ?? CgroupV2.mountPoint() else {
            throw BPFCaptureError(description: "no cgroup v2 hierarchy is mounted", log: "")
        }
        cgroupRoot = root
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { throw BPFCaptureError.libbpf("cannot count the possible CPUs", Int32(-cpus)) }
        possibleCPUs = cpus

        var objectSize = 0
        let objectBytes = fathom_capture_bpf_object(&objectSize)
        guard let obj = fathom_bpf_open(objectBytes, objectSize, "fathom_capture")
        else { throw BPFCaptureError.libbpf("cannot open the embedded BPF object", errno) }
        var loaded = false
        defer { if !loaded { bpf_object__close(obj) } }

        var config = fathom_capture_config(
            snap_length: min(configuration.snapLength, 65535), wakeup_bytes: configuration.wakeupBytes)
        let rc = fathom_bpf_set_rodata(obj, "capture_config", &config, MemoryLayout<fathom_capture_config>.size)
        guard rc == 0 else { throw BPFCaptureError.libbpf("cannot set capture_config", -rc) }
        guard let rings = bpf_object__find_map_by_name(obj, "rings") else {
            throw BPFCaptureError.libbpf("the BPF object has no `rings` map", POSIXErrorCode.ENOENT.rawValue)
        }
        bpf_map__set_max_entries(rings, UInt32(cpus))
        if configuration.interfaces.isEmpty {
            // Nothing to attach them to: don't load (and pay verification for) the tc programs.
            for name in ["capture_tc_ingress", "capture_tc_egress"] {
                if let prog = bpf_object__find_program_by_name(obj, name) { bpf_program__set_autoload(prog, false) }
            }
        }
        let loadError = bpf_object__load(obj)
        guard loadError == 0 else { throw BPFCaptureError.libbpf("the kernel refused the capture programs", -loadError) }
        object = obj

        func mapFD(_ name: String) throws -> Int32 {
            guard let map = bpf_object__find_map_by_name(obj, name) else {
                throw BPFCaptureError.libbpf("the BPF object has no `\(name)` map", POSIXErrorCode.ENOENT.rawValue)
            }
            return bpf_map__fd(map)
        }
        settingsFD = try mapFD("settings")
        targetsFD = try mapFD("targets")
        lossesFD = try mapFD("ring_losses")
        let ringsFD = try mapFD("rings")
        ringsMapFD = ringsFD
        for cpu in 0..<cpus {
            let fd = fathom_bpf_create_ringbuf("fathom_ring", configuration.ringBytesPerCPU)
            guard fd >= 0 else { throw BPFCaptureError.libbpf("cannot create the ring buffer of CPU \(cpu)", -fd) }
            ringFDs.append(fd)
            var key = UInt32(cpu)
            var value = fd
            guard bpf_map_update_elem(ringsFD, &key, &value, 0) == 0 else {
                throw BPFCaptureError.libbpf("cannot install the ring buffer of CPU \(cpu)", errno)
            }
        }
        try writeSettings()
        loaded = true
    }

    deinit { stop() }

    private func writeSettings() throws {
        var key: UInt32 = 0
        var value = fathom_capture_settings(
            paused: paused ? 1 : 0, capture_all: targets.values.contains(.include) ? 0 : 1,
            targeted: targets.isEmpty ? 0 : 1, reserved: 0)
        guard bpf_map_update_elem(settingsFD, &key, &value, 0) == 0 else {
            throw BPFCaptureError.libbpf("cannot write the capture settings", errno)
        }
    }

    public func start(sink: PacketSink) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let obj = object, drainer == nil else { return }
        let drainer = try RingDrainer(
            ringFDs: ringFDs, ringBytes: configuration.ringBytesPerCPU, sink: sink, counters: counters, tlsCounters: tlsCounters,
            intervalMilliseconds: configuration.drainIntervalMilliseconds)
        self.drainer = drainer
        do {
            let cgroupFD = open(cgroupRoot, O_RDONLY | O_DIRECTORY)
            guard cgroupFD >= 0 else { throw BPFCaptureError.libbpf("cannot open \(cgroupRoot)", errno) }
            defer { close(cgroupFD) }
            for name in ["capture_cgroup_ingress", "capture_cgroup_egress"] {
                guard let prog = bpf_object__find_program_by_name(obj, name),
                    let link = bpf_program__attach_cgroup(prog, cgroupFD)
                else { throw BPFCaptureError.libbpf("cannot attach \(name) at \(cgroupRoot)", errno) }
                links.append(link)
            }
            for interface in configuration.interfaces {
                let ifindex = Int32(if_nametoindex(interface))
                guard ifindex > 0 else { throw BPFCaptureError.libbpf("no interface named \(interface)", POSIXErrorCode.ENODEV.rawValue) }
                for (name, ingress) in [("capture_tc_ingress", true), ("capture_tc_egress", false)] {
                    guard let prog = bpf_object__find_program_by_name(obj, name) else {
                        throw BPFCaptureError.libbpf("the BPF object has no \(name)", POSIXErrorCode.ENOENT.rawValue)
                    }
                    // A filter left behind by a killed agent would otherwise stay (tc filters are not links).
                    _ = fathom_bpf_tc_detach(ifindex, ingress ? 1 : 0)
                    let rc = fathom_bpf_tc_attach(ifindex, ingress ? 1 : 0, bpf_program__fd(prog))
                    guard rc == 0 else { throw BPFCaptureError.libbpf("cannot attach tc to \(interface)", -rc) }
                    tcAttachments.append((ifindex, ingress))
                }
            }
        } catch {
            detachLocked()
            drainer.stop()
            self.drainer = nil
            throw error
        }
        drainer.start()
        logger.info(
            "eBPF capture attached",
            metadata: [
                "cgroup": "\(cgroupRoot)", "cpus": "\(possibleCPUs)",
                "interfaces": "\(configuration.interfaces.joined(separator: ","))",
            ])
    }

    private func detachLocked() {
        for link in links { bpf_link__destroy(link) }
        links.removeAll()
        for attachment in tcAttachments { _ = fathom_bpf_tc_detach(attachment.ifindex, attachment.ingress ? 1 : 0) }
        tcAttachments.removeAll()
    }

    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        detachLocked()
        // Detached first, so the drainer's last pass empties rings nobody writes to any more.
        drainer?.stop()
        drainer = nil
        for fd in ringFDs { close(fd) }
        ringFDs.removeAll()
        if let obj = object { bpf_object__close(obj) }
        object = nil
    }

    public func setPaused(_ paused: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard object != nil else { return }
        self.paused = paused
        try? writeSettings()
    }

    /// Includes or excludes a cgroup and everything below it; nil removes the cgroup from the targeting map.
    /// Once any cgroup is included, only included cgroups are captured.
    public func setTarget(cgroupID: UInt64, _ target: CgroupTarget?) throws {
        lock.lock()
        defer { lock.unlock() }
        var key = cgroupID
        if var value = target?.rawValue {
            guard bpf_map_update_elem(targetsFD, &key, &value, 0) == 0 else {
                throw BPFCaptureError.libbpf("cannot update the targeting map", errno)
            }
        } else {
            _ = bpf_map_delete_elem(targetsFD, &key)
        }
        targets[cgroupID] = target
        try writeSettings()
    }

    /// Size and verification cost of each loaded program, as the kernel reports them.
    public struct ProgramStatistics: Sendable {
        public var name: String
        public var instructions: Int
        public var jitedBytes: Int
        /// Instructions the verifier processed (its complexity limit is 1 M).
        public var verifiedInstructions: Int
    }

    public func programStatistics() -> [ProgramStatistics] {
        lock.lock()
        defer { lock.unlock() }
        guard let obj = object else { return [] }
        var result: [ProgramStatistics] = []
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            let fd = bpf_program__fd(p)
            var info = bpf_prog_info()
            var length = UInt32(MemoryLayout<bpf_prog_info>.size)
            if fd >= 0, bpf_obj_get_info_by_fd(fd, &info, &length) == 0 {
                result.append(
                    ProgramStatistics(
                        name: String(cString: bpf_program__name(p)),
                        instructions: Int(info.xlated_prog_len) / 8, jitedBytes: Int(info.jited_prog_len),
                        verifiedInstructions: Int(info.verified_insns)))
            }
            prog = bpf_object__next_program(obj, p)
        }
        return result
    }

    /// Records each CPU's programs could not write because its ring was full.
    public func ringLosses() -> [UInt64] {
        lock.lock()
        defer { lock.unlock() }
        guard object != nil else { return [] }
        var key: UInt32 = 0
        var values = [UInt64](repeating: 0, count: possibleCPUs)
        guard bpf_map_lookup_elem(lossesFD, &key, &values) == 0 else { return [] }
        return values
    }

    public func metrics() -> [Metric] {
        var result: [Metric] = []
        let losses = ringLosses()
        result.append(
            Metric(
                "fathom_ring_lost_records_total", .counter, "Packets the kernel could not record because a CPU's ring was full.",
                losses.enumerated().map { (labels: [("cpu", String($0.offset))], value: Double($0.element)) }))
        result.append(contentsOf: counters.metrics(source: source))
        return result
    }
}
