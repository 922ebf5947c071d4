import FathomModel
import Synchronization

/// Which process had a pid when, and which process opened or listens on a TCP socket: kept from the kernel's
/// exec, exit, connect and listen events (and `/proc` at start) so traffic is named by its process even when that
/// process exited before its calls were dissected, or when they are dissected later from a snapshot. Bounded:
/// ended processes are forgotten `retentionMs` after their end, and at most `capacity` processes are kept.
public final class ProcessHistory: Sendable {
    /// One program a pid ran, from its start or exec to its next exec or its exit.
    public struct Span: Sendable, Equatable, Codable {
        public var pid: Int
        /// `comm` as the kernel had it.
        public var command: String
        /// The executable's path when known.
        public var executable: String?
        public var cgroupID: UInt64
        public var cgroupPath: String?
        /// Known since (ms since the epoch); `Int64.min` for processes already running when the agent started.
        public var fromMs: Int64
        /// nil while it runs.
        public var untilMs: Int64?
        /// What the cgroup path says, parsed once: every call of the process reads it.
        let identity: CgroupIdentity

        init(pid: Int, command: String, executable: String?, cgroupID: UInt64, cgroupPath: String?, fromMs: Int64,
             untilMs: Int64?) {
            self.pid = pid
            self.command = command
            self.executable = executable
            self.cgroupID = cgroupID
            self.cgroupPath = cgroupPath
            self.fromMs = fromMs
            self.untilMs = untilMs
            identity = cgroupPath.map { CgroupIdentity(cgroupPath: $0) } ?? CgroupIdentity()
        }

        enum CodingKeys: String, CodingKey {
            case pid, command, executable, cgroupID, cgroupPath, fromMs, untilMs
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(pid: try c.decode(Int.self, forKey: .pid), command: try c.decode(String.self, forKey: .command),
                      executable: try c.decodeIfPresent(String.self, forKey: .executable),
                      cgroupID: try c.decode(UInt64.self, forKey: .cgroupID),
                      cgroupPath: try c.decodeIfPresent(String.self, forKey: .cgroupPath),
                      fromMs: try c.decode(Int64.self, forKey: .fromMs), untilMs: try c.decodeIfPresent(Int64.self, forKey: .untilMs))
        }

        var record: ProcessRecord {
            ProcessRecord(pid: pid, command: command, executable: executable, cgroupPath: cgroupPath, identity: identity)
        }
    }

    /// The process that opened (connect) or listens on (listen) the TCP socket at a local port of a cgroup.
    public struct SocketOwner: Sendable, Equatable, Codable {
        public var cgroupID: UInt64
        public var port: UInt16
        public var pid: Int
        public var fromMs: Int64
        public var listening: Bool
    }

    /// What a snapshot keeps: the spans and socket owners that may name its traffic.
    public struct Saved: Sendable, Codable, Equatable {
        public var spans: [Span]
        public var sockets: [SocketOwner]
    }

    struct SocketKey: Hashable {
        var cgroupID: UInt64
        var port: UInt16
    }

    struct State {
        var spans: [Int: [Span]] = [:]
        var sockets: [SocketKey: [SocketOwner]] = [:]
        var spanCount = 0
        var lastPruneMs: Int64 = 0
        /// Ended processes forgotten before their retention ran out, to stay within `capacity`.
        var evicted = 0
    }

    public let retentionMs: Int64
    public let capacity: Int
    /// Spans kept per pid (pids are reused; a process may exec several times).
    static let spansPerPID = 4
    /// Owners kept per socket key (ephemeral ports are reused).
    static let ownersPerSocket = 4
    /// Ended processes are looked for at most this often (each pass walks the whole history).
    static let pruneIntervalMs: Int64 = 10_000
    /// Events and packets are stamped by the same clock through different conversions: allow this much skew.
    static let skewMs: Int64 = 1_000
    private let state = Mutex(State())
    /// cgroup id → path, resolved when an event arrives (the cgroup may be gone when the traffic is named).
    private let cgroupPath: @Sendable (UInt64) -> String?
    /// pid → executable path while the process runs (`/proc/<pid>/exe` resolves what exec was given).
    private let executable: @Sendable (Int) -> String?

    public init(retentionMs: Int64 = 3_600_000, capacity: Int = 200_000,
                cgroupPath: @escaping @Sendable (UInt64) -> String? = { _ in nil },
                executable: @escaping @Sendable (Int) -> String? = { _ in nil }) {
        self.retentionMs = retentionMs
        self.capacity = max(16, capacity)
        self.cgroupPath = cgroupPath
        self.executable = executable
    }

    /// A history holding what a snapshot saved; it learns nothing more.
    public convenience init(restoring saved: Saved) {
        self.init(retentionMs: .max, capacity: max(16, saved.spans.count))
        state.withLock { s in
            for span in saved.spans { s.spans[span.pid, default: []].append(span) }
            for pid in s.spans.keys { s.spans[pid]?.sort { $0.fromMs < $1.fromMs } }
            s.spanCount = saved.spans.count
            for owner in saved.sockets {
                s.sockets[SocketKey(cgroupID: owner.cgroupID, port: owner.port), default: []].append(owner)
            }
        }
    }

    // MARK: Learning

    /// Processes running when the agent starts, as `/proc` shows them.
    public func seed(_ records: [ProcessRecord], cgroupIDs: [Int: UInt64] = [:]) {
        state.withLock { s in
            for record in records where s.spans[record.pid] == nil {
                s.spans[record.pid] = [Span(pid: record.pid, command: record.command, executable: record.executable,
                                            cgroupID: cgroupIDs[record.pid] ?? 0, cgroupPath: record.cgroupPath,
                                            fromMs: .min, untilMs: nil)]
                s.spanCount += 1
            }
        }
    }

    public func apply(_ event: ProcessEvent) {
        let pid = Int(event.pid)
        let atMs = Int64(event.timestampNanoseconds / 1_000_000)
        let startMs = Int64(event.startNanoseconds / 1_000_000)
        let path = cgroupPath(event.cgroupID)
        // Read outside the lock: it is a readlink in /proc.
        let exe = event.kind == .exec ? executable(pid) ?? event.filename : nil
        state.withLock { s in
            switch event.kind {
            case .exec:
                Self.close(pid, atMs: atMs, in: &s)
                Self.append(Span(pid: pid, command: event.command, executable: exe, cgroupID: event.cgroupID,
                                 cgroupPath: path, fromMs: atMs, untilMs: nil), in: &s)
            case .exit:
                if !Self.close(pid, atMs: atMs, in: &s) {
                    // Forked without exec, or older than the agent: known from its end only.
                    Self.append(Span(pid: pid, command: event.command, executable: nil, cgroupID: event.cgroupID,
                                     cgroupPath: path, fromMs: startMs, untilMs: atMs), in: &s)
                }
            case .connect, .listen:
                if s.spans[pid]?.last?.untilMs != nil || s.spans[pid] == nil {
                    Self.append(Span(pid: pid, command: event.command, executable: nil, cgroupID: event.cgroupID,
                                     cgroupPath: path, fromMs: min(startMs, atMs), untilMs: nil), in: &s)
                }
                let key = SocketKey(cgroupID: event.cgroupID, port: event.localPort)
                var owners = s.sockets[key] ?? []
                owners.append(SocketOwner(cgroupID: event.cgroupID, port: event.localPort, pid: pid, fromMs: atMs,
                                          listening: event.kind == .listen))
                if owners.count > Self.ownersPerSocket { owners.removeFirst(owners.count - Self.ownersPerSocket) }
                s.sockets[key] = owners
            }
            if atMs - s.lastPruneMs >= Self.pruneIntervalMs || s.spanCount > capacity { prune(nowMs: atMs, in: &s) }
        }
    }

    // MARK: Lookups

    /// The program `pid` ran at `atMs`, or nil when the history does not know.
    public func process(pid: Int, atMs: Int64) -> ProcessRecord? {
        state.withLock { s in
            guard let spans = s.spans[pid] else { return nil }
            for index in spans.indices.reversed() {
                let span = spans[index]
                // Only the oldest span may start a little after the traffic: later ones start at an exec.
                guard span.fromMs <= atMs + (index == spans.startIndex ? Self.skewMs : 0) else { continue }
                guard span.untilMs.map({ atMs <= $0 + Self.skewMs }) ?? true else { return nil }
                return span.record
            }
            return nil
        }
    }

    /// The process that opened or listens on the TCP socket at local `port` of `cgroupID` at `atMs`.
    public func socketOwner(cgroupID: UInt64, port: UInt16, atMs: Int64) -> Int? {
        state.withLock { s in
            guard let owners = s.sockets[SocketKey(cgroupID: cgroupID, port: port)] else { return nil }
            // A connection's first packets (SYN) precede its connect event, which comes when it is established.
            return owners.last { $0.fromMs <= atMs + Self.skewMs }?.pid
        }
    }

    /// What a snapshot of `fromMs...untilMs` needs: spans alive in the window, and socket owners known by its end.
    public func saved(fromMs: Int64, untilMs: Int64) -> Saved {
        state.withLock { s in
            let spans = s.spans.values.joined().filter { $0.fromMs <= untilMs && ($0.untilMs ?? .max) >= fromMs }
            let pids = Set(spans.map(\.pid))
            let sockets = s.sockets.values.joined().filter { $0.fromMs <= untilMs + Self.skewMs && pids.contains($0.pid) }
            return Saved(spans: spans.sorted { ($0.pid, $0.fromMs) < ($1.pid, $1.fromMs) },
                         sockets: sockets.sorted { ($0.cgroupID, $0.port, $0.fromMs) < ($1.cgroupID, $1.port, $1.fromMs) })
        }
    }

    public var counts: (processes: Int, spans: Int, sockets: Int, evicted: Int) {
        state.withLock { s in (s.spans.count, s.spanCount, s.sockets.count, s.evicted) }
    }

    // MARK: Internals

    /// Ends the running span of `pid` at `atMs`; false when it has none.
    @discardableResult
    private static func close(_ pid: Int, atMs: Int64, in s: inout State) -> Bool {
        guard var spans = s.spans[pid], let last = spans.last, last.untilMs == nil else { return false }
        spans[spans.count - 1].untilMs = max(atMs, last.fromMs)
        s.spans[pid] = spans
        return true
    }

    private static func append(_ span: Span, in s: inout State) {
        var spans = s.spans[span.pid] ?? []
        spans.append(span)
        s.spanCount += 1
        if spans.count > spansPerPID {
            s.spanCount -= spans.count - spansPerPID
            spans.removeFirst(spans.count - spansPerPID)
        }
        s.spans[span.pid] = spans
    }

    /// Forgets spans that ended before the retention horizon (and, over capacity, the oldest ended ones), then the
    /// socket owners whose process is forgotten.
    private func prune(nowMs: Int64, in s: inout State) {
        s.lastPruneMs = nowMs
        let retained = nowMs &- retentionMs
        var horizon = retained
        if s.spanCount > capacity {
            let ends = s.spans.values.joined().compactMap(\.untilMs).sorted()
            let excess = s.spanCount - capacity * 9 / 10
            if excess > 0, excess <= ends.count { horizon = max(horizon, ends[excess - 1] + 1) }
        }
        var count = 0
        for (pid, spans) in s.spans {
            let kept = spans.filter { ($0.untilMs ?? .max) >= horizon }
            s.evicted += spans.count(where: { ($0.untilMs ?? .max) < horizon && ($0.untilMs ?? .max) >= retained })
            s.spans[pid] = kept.isEmpty ? nil : kept
            count += kept.count
        }
        s.spanCount = count
        for (key, owners) in s.sockets {
            let kept = owners.filter { s.spans[$0.pid] != nil }
            s.sockets[key] = kept.isEmpty ? nil : kept
        }
    }
}
