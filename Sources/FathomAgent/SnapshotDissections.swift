import FathomDissect
import FathomModel
import FathomRecording
import FathomStore
import Foundation
import Logging
import Synchronization

/// Where one delayed dissection stands; kept as `status.json` beside its `calls.db`.
struct DissectionStatus: Codable, Sendable, Equatable {
    enum State: String, Codable, Sendable { case running, completed, stopped, failed }

    var snapshotName: String
    var dissectionName: String
    /// The `db` argument of /mcp/calls that queries it.
    var db: String
    var state: State
    var reason: String?
    /// Bytes and packets of the snapshot read so far, of the total.
    var bytesDone: UInt64 = 0
    var bytesTotal: UInt64
    var packetsDone: UInt64 = 0
    var packetsTotal: UInt64
    /// Calls stored so far.
    var callsFound: UInt64 = 0
    /// bytes_done / bytes_total, 0…1.
    var progress: Double = 0
    var startedMs: Int64
    var finishedMs: Int64?
}

/// Delayed dissection: runs the dissection engine over a completed snapshot into its own calls database,
/// `SNAPSHOT/dissections/NAME/calls.db`, on a background thread per job, with the same engine and call filtering
/// as live dissection (so a snapshot gives the calls live dissection gave for its window).
/// After a restart, dissections left running are marked failed. Thread-safe.
final class SnapshotDissections: Sendable {
    private final class Job: Sendable {
        let cancelled = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
    }

    private struct State {
        var statuses: [String: DissectionStatus] = [:]
        var jobs: [String: Job] = [:]
        var databases: [String: CallsDatabase] = [:]
    }

    static let interruptedReason = "interrupted: the agent stopped before the dissection was complete"

    private let snapshots: SnapshotStore
    private let node: String
    private let ownEndpoint: (host: String, port: Int)
    /// Names both ends of a snapshot's calls (given its name) as live dissection did: from the tables saved with the
    /// snapshot, which hold its window's pods, processes and names; nil without attribution.
    private let makeAttribution: @Sendable (String) -> IngestAttribution?
    private let logger: Logger
    private let state = Mutex(State())

    init(
        snapshots: SnapshotStore, node: String, ownEndpoint: (host: String, port: Int),
        makeAttribution: @escaping @Sendable (String) -> IngestAttribution? = { _ in nil }, logger: Logger
    ) {
        self.snapshots = snapshots
        self.node = node
        self.ownEndpoint = ownEndpoint
        self.makeAttribution = makeAttribution
        self.logger = logger
        var statuses: [String: DissectionStatus] = [:]
        for snapshot in snapshots.list() {
            let root = snapshots.directory(of: snapshot.name) + "/dissections"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                guard var status = Self.read(root + "/" + name + "/status.json") else { continue }
                if status.state == .running {
                    status.state = .failed
                    status.reason = Self.interruptedReason
                    try? Self.write(status, to: root + "/" + name + "/status.json")
                }
                statuses[status.db] = status
            }
        }
        state.withLock { $0.statuses = statuses }
    }

    private func directory(_ snapshot: String, _ dissection: String) -> String {
        snapshots.directory(of: snapshot) + "/dissections/" + dissection
    }

    /// Starts dissecting a completed snapshot into a new database named `dissection`.
    func start(snapshot: String, dissection: String) throws -> DissectionStatus {
        if let problem = SnapshotName.problem(dissection, what: "dissection name") { throw APIError.badArgument(problem) }
        guard let manifest = snapshots.manifest(snapshot) else { throw APIError.notFound("no snapshot named `\(snapshot)`") }
        let files: [String]
        do {
            files = try snapshots.packetFiles(snapshot)
        } catch {
            throw APIError.badArgument(error.description)
        }
        let db = snapshot + "/" + dissection
        let status = DissectionStatus(
            snapshotName: snapshot, dissectionName: dissection, db: db, state: .running, bytesTotal: manifest.bytes,
            packetsTotal: manifest.packets, startedMs: Int64(Date().timeIntervalSince1970 * 1000))
        let job = Job()
        try state.withLock { state in
            guard state.statuses[db] == nil else {
                throw APIError.badArgument("snapshot `\(snapshot)` already has a dissection named `\(dissection)`")
            }
            state.statuses[db] = status
            state.jobs[db] = job
        }
        let directory = directory(snapshot, dissection)
        let database: CallsDatabase
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Self.write(status, to: directory + "/status.json")
            database = try CallsDatabase(path: directory + "/calls.db")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            state.withLock {
                $0.statuses[db] = nil
                $0.jobs[db] = nil
            }
            throw error
        }
        state.withLock { $0.databases[db] = database }
        let thread = Thread { [self] in run(status, files: files, into: database, job: job) }
        thread.name = "fathom-delayed-dissect"
        thread.start()
        return status
    }

    /// The dissection loop: the snapshot's files in order through one engine, calls stored in batches.
    private func run(_ initial: DissectionStatus, files: [String], into database: CallsDatabase, job: Job) {
        defer { job.finished.signal() }
        var status = initial
        let attribution = makeAttribution(status.snapshotName)
        let collector = Collector(ownEndpoint: ownEndpoint, attribution: attribution)
        let engine = DissectionEngine(
            node: node, idPrefix: "\(node)-\(status.snapshotName)-\(status.dissectionName)", sink: collector,
            packetObserver: attribution)
        var bytesBefore: UInt64 = 0
        func store() throws {
            let (calls, _, _) = collector.take()
            guard !calls.isEmpty else { return }
            try database.insert(calls)
            status.callsFound += UInt64(calls.count)
        }
        func publish(_ reader: PacketFileReader?) {
            status.bytesDone = bytesBefore + (reader?.validLength ?? 0)
            status.progress = status.bytesTotal == 0 ? 1 : min(1, Double(status.bytesDone) / Double(status.bytesTotal))
            let snapshot = status
            state.withLock { if $0.jobs[snapshot.db] === job { $0.statuses[snapshot.db] = snapshot } }
        }
        do {
            for file in files {
                let reader = try PacketFileReader(path: file)
                while let record = try reader.next() {
                    engine.process(record.metadata, record.bytes)
                    status.packetsDone += 1
                    if status.packetsDone % 20_000 == 0 {
                        if job.cancelled.load(ordering: .relaxed) { break }
                        try store()
                        publish(reader)
                    }
                }
                if job.cancelled.load(ordering: .relaxed) { break }
                bytesBefore += reader.validLength
                publish(nil)
            }
            engine.finish()
            try store()
            status.state = job.cancelled.load(ordering: .relaxed) ? .stopped : .completed
            if status.state == .stopped { status.reason = "stopped before the end of the snapshot" }
        } catch {
            status.state = .failed
            status.reason = "\(error)"
            logger.warning("delayed dissection \(status.db) failed: \(error)")
        }
        publish(nil)
        status.finishedMs = Int64(Date().timeIntervalSince1970 * 1000)
        let final = status
        try? Self.write(final, to: directory(final.snapshotName, final.dissectionName) + "/status.json")
        state.withLock {
            if $0.jobs[final.db] === job {
                $0.statuses[final.db] = final
                $0.jobs[final.db] = nil
            }
        }
    }

    func status(snapshot: String, dissection: String) throws -> DissectionStatus {
        guard let status = state.withLock({ $0.statuses[snapshot + "/" + dissection] }) else {
            throw APIError.notFound("snapshot `\(snapshot)` has no dissection named `\(dissection)`")
        }
        return status
    }

    /// Every dissection, or a snapshot's, oldest first.
    func list(snapshot: String?) -> [DissectionStatus] {
        state.withLock { Array($0.statuses.values) }
            .filter { snapshot == nil || $0.snapshotName == snapshot }
            .sorted { ($0.startedMs, $0.db) < ($1.startedMs, $1.db) }
    }

    /// Stops a running dissection (the calls found so far stay queryable) and waits for it.
    func stop(snapshot: String, dissection: String) throws -> DissectionStatus {
        _ = try status(snapshot: snapshot, dissection: dissection)
        if let job = state.withLock({ $0.jobs[snapshot + "/" + dissection] }) { cancelAndWait(job) }
        return try status(snapshot: snapshot, dissection: dissection)
    }

    /// Stops it if running, then removes its database.
    func delete(snapshot: String, dissection: String) throws {
        _ = try status(snapshot: snapshot, dissection: dissection)
        try remove(snapshot + "/" + dissection, files: true)
    }

    /// Stops and forgets every dissection of a snapshot that is being deleted (the snapshot's deletion removes
    /// the files).
    func forgetAll(snapshot: String) {
        for status in list(snapshot: snapshot) { try? remove(status.db, files: false) }
    }

    private func remove(_ db: String, files: Bool) throws {
        if let job = state.withLock({ $0.jobs[db] }) { cancelAndWait(job) }
        let status = state.withLock { state in
            defer {
                state.statuses[db] = nil
                state.jobs[db] = nil
                state.databases[db] = nil
            }
            return state.statuses[db]
        }
        if files, let status { try FileManager.default.removeItem(atPath: directory(status.snapshotName, status.dissectionName)) }
    }

    private func cancelAndWait(_ job: Job) {
        job.cancelled.store(true, ordering: .relaxed)
        job.finished.wait()
        job.finished.signal()  // others waiting on the same job go through too
    }

    /// Stops every job (at shutdown); they stay `running` on disk, so the next start marks them failed.
    func close() {
        for job in state.withLock({ Array($0.jobs.values) }) {
            job.cancelled.store(true, ordering: .relaxed)
        }
        for job in state.withLock({ Array($0.jobs.values) }) {
            job.finished.wait()
            job.finished.signal()
        }
    }

    /// The calls database of `SNAPSHOT/DISSECTION`, opened on first use.
    func database(_ db: String) throws -> CallsDatabase {
        let parts = db.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw APIError.badArgument("`db` must be SNAPSHOT/DISSECTION (see list_snapshot_dissections), not `\(db.prefix(80))`")
        }
        let status = try status(snapshot: String(parts[0]), dissection: String(parts[1]))
        if let open = state.withLock({ $0.databases[db] }) { return open }
        let database = try CallsDatabase(path: directory(status.snapshotName, status.dissectionName) + "/calls.db")
        return state.withLock { state in
            if let open = state.databases[db] { return open }
            state.databases[db] = database
            return database
        }
    }

    private static func read(_ path: String) -> DissectionStatus? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(DissectionStatus.self, from: data)
    }

    private static func write(_ status: DissectionStatus, to path: String) throws {
        try AgentRoutes.encoder.encode(status).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
