#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Maps cgroup v2 ids (what BPF programs report) to cgroup paths. On cgroup v2 a cgroup's id is the inode number of
/// its directory, so one walk of the mount maps every id; an unknown id triggers a new walk, at most once per
/// `minimumRescanInterval`, so a burst of traffic from a new pod costs one walk, not one per packet.
public final class CgroupResolver: Sendable {
    /// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid nodes).
    public let mountPoint: String
    /// Walks never go deeper or visit more directories than this, whatever the hierarchy holds.
    public let maximumDepth: Int
    public let maximumCgroups: Int
    public let minimumRescanInterval: Duration

    private struct State {
        var paths: [UInt64: String] = [:]
        var lastScan: ContinuousClock.Instant?
        var scans = 0
    }
    private let state = Mutex(State())

    public init(mountPoint: String, maximumDepth: Int = 32, maximumCgroups: Int = 500_000,
                minimumRescanInterval: Duration = .seconds(1)) {
        self.mountPoint = mountPoint.hasSuffix("/") && mountPoint.count > 1 ? String(mountPoint.dropLast()) : mountPoint
        self.maximumDepth = maximumDepth
        self.maximumCgroups = maximumCgroups
        self.minimumRescanInterval = minimumRescanInterval
    }

    /// The path of the cgroup, relative to the mount (`/kubepods.slice/…`), or nil when no such cgroup exists.
    public func path(ofCgroup id: UInt64) -> String? {
        if let known = state.withLock({ $0.paths[id] }) { return known }
        let now = ContinuousClock.now
        let due = state.withLock { s -> Bool in
            if let last = s.lastScan, now - last < minimumRescanInterval { return false }
            s.lastScan = now
            return true
        }
        guard due else { return nil }
        let fresh = scan()
        return state.withLock {
            $0.paths = fresh
            $0.scans += 1
            return fresh[id]
        }
    }

    /// The container and pod the cgroup belongs to (empty identity when unknown).
    public func identity(ofCgroup id: UInt64) -> CgroupIdentity {
        path(ofCgroup: id).map { CgroupIdentity(cgroupPath: $0) } ?? CgroupIdentity()
    }

    /// Pod UID → id of the pod's own cgroup (`…pod<uid>.slice`, the parent of its containers' cgroups), from the
    /// last walk; `refresh` walks again first when the last walk is older than `minimumRescanInterval`.
    public func podCgroupIDs(refresh: Bool) -> [String: UInt64] {
        if refresh {
            let now = ContinuousClock.now
            let due = state.withLock { s -> Bool in
                if let last = s.lastScan, now - last < minimumRescanInterval { return false }
                s.lastScan = now
                return true
            }
            if due {
                let fresh = scan()
                state.withLock {
                    $0.paths = fresh
                    $0.scans += 1
                }
            }
        }
        let paths = state.withLock { $0.paths }
        var pods: [String: UInt64] = [:]
        for (id, path) in paths {
            let identity = CgroupIdentity(cgroupPath: path)
            if let uid = identity.podUID, identity.containerID == nil { pods[uid] = id }
        }
        return pods
    }

    /// The pids in the cgroup (`cgroup.procs`), at most `limit`; empty when the cgroup is unknown or gone.
    public func processes(ofCgroup id: UInt64, limit: Int = 64) -> [Int] {
        guard let path = path(ofCgroup: id),
            let data = FileManager.default.contents(atPath: mountPoint + (path == "/" ? "" : path) + "/cgroup.procs")
        else { return [] }
        var pids: [Int] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where pids.count < limit {
            if let pid = Int(line) { pids.append(pid) }
        }
        return pids
    }

    /// How many times the hierarchy was walked (for tests and metrics).
    public var scanCount: Int { state.withLock { $0.scans } }

    /// Walks the hierarchy breadth-first, bounded in depth and count.
    /// Every cgroup's id → path, walked now (snapshots keep this table to name cgroups gone since).
    public func scan() -> [UInt64: String] {
        var found: [UInt64: String] = [:]
        var queue: [(relative: String, depth: Int)] = [("", 0)]
        var next = 0
        while next < queue.count, found.count < maximumCgroups {
            let (relative, depth) = queue[next]
            next += 1
            let absolute = mountPoint + relative
            var st = stat()
            guard lstat(absolute.isEmpty ? "/" : absolute, &st) == 0 else { continue }
            found[UInt64(st.st_ino)] = relative.isEmpty ? "/" : relative
            guard depth < maximumDepth, let dir = opendir(absolute.isEmpty ? "/" : absolute) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                queue.append((relative + "/" + name, depth + 1))
            }
        }
        return found
    }
}
