/// Which local socket owned an address: the cgroup id (and, for TLS plaintext, the pid) that capture stamped on
/// packets sent or received at the local end `ip:port`. Fed once per packet on the dissection thread and read once per
/// call end there, so it needs no lock. Bounded: entries idle for `idleMs` go first, and the table never holds more
/// than `capacity` addresses. A packet of a socket seen with the same owner less than `refreshMs` ago is answered from
/// a small direct-mapped table of recent sockets: the hash-table update per packet was the largest part of
/// dissecting a packet flood, and last-seen times only serve idling out.
public final class SocketOwners {
    /// The local owner of one address.
    public struct Owner: Equatable, Sendable {
        public var cgroupID: UInt64
        /// The process, when a record carried it (TLS plaintext); nil for packets.
        public var pid: Int?
        public var lastSeenMs: Int64
    }

    struct Key: Hashable {
        let ip: IPKey
        let port: UInt16
    }

    public let capacity: Int
    public let idleMs: Int64
    /// A socket's last-seen time is refreshed at most this often.
    static let refreshMs: Int64 = 1_000
    private var owners: [Key: Owner] = [:]
    private struct Sighting: Equatable {
        var key: Key
        var cgroupID: UInt64
        var pid: Int?
    }
    private static let recentSlots = 256
    private var recent = [(sighting: Sighting, atMs: Int64)?](repeating: nil, count: SocketOwners.recentSlots)
    private var newestMs: Int64 = 0
    private var lastPruneMs: Int64 = 0

    public init(capacity: Int = 262_144, idleMs: Int64 = 600_000) {
        self.capacity = max(16, capacity)
        self.idleMs = idleMs
    }

    /// Records that the local socket at `ip:port` belongs to `cgroupID` (and `pid`) at `atMs`. A cgroup id of 0
    /// (libpcap, no socket) says nothing and is ignored.
    public func record(ip: IPKey, port: UInt16, cgroupID: UInt64, pid: Int?, atMs: Int64) {
        guard cgroupID != 0 || pid != nil else { return }
        let key = Key(ip: ip, port: port)
        let sighting = Sighting(key: key, cgroupID: cgroupID, pid: pid)
        let slot = Int(truncatingIfNeeded: (ip.low ^ ip.high ^ UInt64(port) &* 0x9E37_79B9) % UInt64(Self.recentSlots))
        if let last = recent[slot], last.sighting == sighting, atMs >= last.atMs, atMs - last.atMs < Self.refreshMs {
            return
        }
        recent[slot] = (sighting, atMs)
        if atMs > newestMs { newestMs = atMs }
        if var known = owners[key] {
            // A packet record never carries the pid: keep the one a TLS record gave for the same socket.
            if known.cgroupID != cgroupID && cgroupID != 0 {
                known.cgroupID = cgroupID
                known.pid = pid
            } else if let pid {
                known.pid = pid
            }
            known.lastSeenMs = max(known.lastSeenMs, atMs)
            owners[key] = known
            return
        }
        if owners.count >= capacity { makeRoom() }
        owners[key] = Owner(cgroupID: cgroupID, pid: pid, lastSeenMs: atMs)
    }

    /// The owner of the local socket at `ip:port`, or nil when capture never saw it locally.
    public func owner(ip: IPKey, port: UInt16) -> Owner? {
        owners[Key(ip: ip, port: port)]
    }

    public var count: Int { owners.count }

    /// Forgets sockets idle since before `nowMs - idleMs`; cheap to call often (it runs at most once a second).
    public func prune(nowMs: Int64) {
        guard nowMs - lastPruneMs >= 1000 else { return }
        lastPruneMs = nowMs
        let horizon = nowMs - idleMs
        owners = owners.filter { $0.value.lastSeenMs >= horizon }
    }

    /// Full: drop idle entries, and if every entry is recent, the older half.
    private func makeRoom() {
        // Recent sightings may name sockets about to be dropped: they must be recorded again when seen next.
        recent = [(sighting: Sighting, atMs: Int64)?](repeating: nil, count: Self.recentSlots)
        let horizon = newestMs - idleMs
        owners = owners.filter { $0.value.lastSeenMs >= horizon }
        guard owners.count >= capacity else { return }
        let times = owners.values.map(\.lastSeenMs).sorted()
        let median = times[times.count / 2]
        owners = owners.filter { $0.value.lastSeenMs > median }
    }
}
