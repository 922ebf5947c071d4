import Foundation

/// What attribution needs to know about one process, read from `/proc/<pid>`.
public struct ProcessRecord: Sendable, Equatable {
    public var pid: Int
    /// `comm`: the kernel's 15-character task name.
    public var command: String
    /// The executable's path (`/proc/<pid>/exe`), nil when unreadable (kernel threads, no permission).
    public var executable: String?
    /// The cgroup v2 path (`0::` line), or the first v1 path when the node has no v2 hierarchy.
    public var cgroupPath: String?
    /// Container and pod named by the cgroup file.
    public var identity: CgroupIdentity

    public init(pid: Int, command: String, executable: String?, cgroupPath: String?, identity: CgroupIdentity) {
        self.pid = pid
        self.command = command
        self.executable = executable
        self.cgroupPath = cgroupPath
        self.identity = identity
    }

    /// The name users know the process by: the executable's file name, else `comm` (which the kernel truncates).
    public var name: String {
        if let executable, case let last = executable[(executable.lastIndex(of: "/").map(executable.index(after:)) ?? executable.startIndex)...], !last.isEmpty {
            // A deleted executable reads as "/usr/bin/app (deleted)".
            return String(last.hasSuffix(" (deleted)") ? last.dropLast(10) : last)
        }
        return command
    }
}

/// Reads processes from a proc filesystem: `/proc` on the host, `/host/proc` when the agent runs in a pod.
public struct ProcFS: Sendable {
    public let root: String

    public init(root: String = "/proc") {
        self.root = root
    }

    /// The process, or nil when it has exited (or never existed).
    public func process(_ pid: Int) -> ProcessRecord? {
        guard pid > 0, let comm = read("\(root)/\(pid)/comm") else { return nil }
        let cgroupText = read("\(root)/\(pid)/cgroup") ?? ""
        return ProcessRecord(
            pid: pid,
            command: comm.trimmingCharacters(in: .newlines),
            executable: executable(of: pid),
            cgroupPath: Self.cgroupPath(cgroupText),
            identity: CgroupIdentity(procCgroupFile: cgroupText)
        )
    }

    /// The executable's path, nil when unreadable (kernel threads, no permission, gone).
    public func executable(of pid: Int) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(pid)/exe")
    }

    /// Every pid currently in the proc filesystem (numeric directory names).
    public func pids() -> [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap { Int($0) }.sorted()
    }

    static func cgroupPath(_ text: String) -> String? {
        var firstV1: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0", parts[1].isEmpty { return String(parts[2]) }
            if firstV1 == nil { firstV1 = String(parts[2]) }
        }
        return firstV1
    }

    private func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
