import Synchronization

/// IP → name learned from DNS answers seen on the wire (`dst.dns`). Bounded: at most `capacity` addresses, each
/// forgotten `retentionMs` after its answer (or its TTL, when longer), since connections outlive TTLs.
public final class DNSNames: Sendable {
    public let capacity: Int
    public let retentionMs: Int64
    /// Traffic may be stamped slightly before the answer that named it is processed.
    static let earlySlackMs: Int64 = 5_000

    struct Entry {
        var name: String
        var learnedMs: Int64
        var expiresMs: Int64
    }
    private let entries = Mutex<[IPKey: Entry]>([:])

    public init(capacity: Int = 100_000, retentionMs: Int64 = 3_600_000) {
        self.capacity = max(1, capacity)
        self.retentionMs = retentionMs
    }

    /// Called by the DNS dissector for each A/AAAA answer: `name` is the name the client asked (not a CNAME target),
    /// `address` the answer's data.
    public func learn(name: String, address: String, ttl: UInt32, atMs: Int64) {
        guard let key = IPKey(address), !name.isEmpty else { return }
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        let entry = Entry(name: trimmed, learnedMs: atMs, expiresMs: atMs + max(Int64(ttl) * 1000, retentionMs))
        entries.withLock { table in
            if table.count >= capacity, table[key] == nil { Self.evictOldest(&table, count: max(1, capacity / 10)) }
            table[key] = entry
        }
    }

    /// The name for `ip` at `timestampMs`, or nil.
    public func name(for ip: IPKey, at timestampMs: Int64) -> String? {
        entries.withLock { table in
            guard let entry = table[ip], timestampMs >= entry.learnedMs - Self.earlySlackMs,
                timestampMs <= entry.expiresMs else { return nil }
            return entry.name
        }
    }

    public var count: Int { entries.withLock { $0.count } }

    /// One learned name, as a snapshot keeps it.
    public struct SavedName: Sendable, Codable, Equatable {
        public var ip: String
        public var name: String
        public var learnedMs: Int64
        public var expiresMs: Int64
    }

    /// The names that may name traffic of `fromMs...untilMs`.
    public func saved(fromMs: Int64, untilMs: Int64) -> [SavedName] {
        entries.withLock { table in
            table.compactMap { ip, entry in
                entry.learnedMs - Self.earlySlackMs <= untilMs && entry.expiresMs >= fromMs
                    ? SavedName(ip: ip.description, name: entry.name, learnedMs: entry.learnedMs, expiresMs: entry.expiresMs) : nil
            }.sorted { $0.ip < $1.ip }
        }
    }

    /// Names a snapshot saved, to which dissection of the snapshot adds the answers in its packets.
    public convenience init(restoring saved: [SavedName]) {
        self.init(capacity: max(100_000, saved.count * 2))
        entries.withLock { table in
            for name in saved {
                guard let key = IPKey(name.ip) else { continue }
                table[key] = Entry(name: name.name, learnedMs: name.learnedMs, expiresMs: name.expiresMs)
            }
        }
    }

    private static func evictOldest(_ table: inout [IPKey: Entry], count: Int) {
        let oldest = table.sorted { $0.value.learnedMs < $1.value.learnedMs }.prefix(count).map(\.key)
        for key in oldest { table[key] = nil }
    }
}
