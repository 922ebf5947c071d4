import Foundation

/// Finds where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on most nodes, `/sys/fs/cgroup/unified` on
/// hybrid systems.
public enum CgroupV2 {
    public static func mountPoint(mountInfo: String) -> String? {
        var found: [String] = []
        for line in mountInfo.split(separator: "\n") {
            // mountinfo: "id parent major:minor root mount-point options … - fstype source super-options"
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            found.append(unescape(String(fields[4])))
        }
        return found.first { $0 == "/sys/fs/cgroup" } ?? found.first { $0 == "/sys/fs/cgroup/unified" } ?? found.first
    }

    public static func mountPoint() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        return mountPoint(mountInfo: info)
    }

    /// mountinfo escapes space, tab, newline and backslash as octal.
    static func unescape(_ path: String) -> String {
        guard path.contains("\\") else { return path }
        var out = ""
        var it = Array(path.utf8)[...]
        var bytes: [UInt8] = []
        while let c = it.popFirst() {
            if c == UInt8(ascii: "\\"), it.count >= 3, let v = UInt8(String(decoding: it.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(v)
                it = it.dropFirst(3)
            } else {
                bytes.append(c)
            }
        }
        out = String(decoding: bytes, as: UTF8.self)
        return out
    }
}

extension CgroupV2 {
    /// The cgroup v2 id of this process: on cgroup v2 a cgroup's id is the inode number of its directory.
    public static func ownCgroupID(mount: String?) -> UInt64? {
        guard let mount, let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        return cgroupID(path: mount + String(line.dropFirst(3)))
    }

    public static func cgroupID(path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }
}
