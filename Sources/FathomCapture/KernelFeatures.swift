internal import CFathomBPF
import Foundation

/// What the running kernel offers the agent, probed at start (the agent picks its paths from this and reports it
/// on /healthz) and by `fathom selftest`.
public struct KernelFeatures: Sendable, Codable, Equatable {
    public var kernelRelease: String
    public var btf: Bool
    public var cgroupV2Mount: String?
    public var ringBuffer: Bool
    public var cgroupSKB: Bool
    public var tc: Bool
    public var uprobes: Bool
    public var kprobes: Bool
    public var tracepoints: Bool

    public static func probe() -> KernelFeatures {
        mountTracefsIfMissing()
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].first {
            FileManager.default.fileExists(atPath: "\($0)/events")
        }
        return KernelFeatures(
            kernelRelease: release,
            btf: FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux"),
            cgroupV2Mount: CgroupV2.mountPoint(),
            ringBuffer: libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil) == 1,
            cgroupSKB: libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nil) == 1,
            tc: libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nil) == 1,
            uprobes: tracefs.map { FileManager.default.fileExists(atPath: "\($0)/uprobe_events") } ?? false,
            kprobes: tracefs.map { FileManager.default.fileExists(atPath: "\($0)/kprobe_events") } ?? false,
            tracepoints: tracefs != nil
        )
    }

    /// Tracepoints and uprobes are found through tracefs, which a fresh node may not have mounted.
    static func mountTracefsIfMissing() {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: "/sys/kernel/tracing/events"), !fm.fileExists(atPath: "/sys/kernel/debug/tracing/events"),
            fm.fileExists(atPath: "/sys/kernel/tracing")
        else { return }
        _ = mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nil)
    }
}
