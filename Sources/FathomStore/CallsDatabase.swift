import FathomModel
import Foundation
import GRDB
import GRDBSQLite

/// A calls database: the real-time one of an agent, or one per snapshot dissection. SQLite in WAL mode, so queries
/// read while the dissector writes; batched inserts in one transaction each; indexes chosen from the queries that
/// matter (time windows, status, path, and the two ends' names), since every index costs ingest speed.
///
/// Each row holds the call as a compact binary record (`CallCodec`) after the columns filters read, so a scan whose
/// residual needs only columns never reads the records.
public final class CallsDatabase: Sendable {
    public let path: String
    let pool: DatabasePool

    /// The agent's real-time database, in its data directory.
    public static let realTimeFileName = "calls.db"

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // NORMAL is crash-safe in WAL mode: a kill -9 loses at most the last transactions, never the file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Scans read pages straight from the mapping instead of one read() per page.
            try db.execute(sql: "PRAGMA mmap_size = 4294967296")
            // A new database gets 32 KiB pages (an existing one keeps its own). A call with a few KB of body preview
            // then fits one page instead of spilling into an overflow page, and the WAL and its checkpoints write
            // eight times fewer frames: `fathom synthetic-store --response-body-bytes 4000` took 35% less CPU than
            // with SQLite's default 4 KiB, and the same with small bodies.
            try db.execute(sql: "PRAGMA page_size = 32768")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreError("cannot open the calls database \(path): \(error)")
        }
    }

    /// Every column a filter can be answered from, then the record; `seq` orders calls (insertion order ≈ time order).
    /// Single-column indexes keep `seq` order within an equality, so a page streams without sorting.
    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("calls-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE calls (
                        seq INTEGER PRIMARY KEY,
                        id TEXT NOT NULL,
                        ts INTEGER NOT NULL,
                        proto TEXT NOT NULL,
                        method TEXT NOT NULL,
                        path TEXT NOT NULL,
                        status INTEGER NOT NULL,
                        latency_ms REAL NOT NULL,
                        node TEXT NOT NULL,
                        src_name TEXT NOT NULL,
                        dst_name TEXT NOT NULL,
                        src_namespace TEXT NOT NULL,
                        dst_namespace TEXT NOT NULL,
                        src_pod TEXT NOT NULL,
                        src_service TEXT NOT NULL,
                        dst_pod TEXT NOT NULL,
                        dst_service TEXT NOT NULL,
                        capture_source TEXT NOT NULL,
                        flags INTEGER NOT NULL,
                        call BLOB NOT NULL
                    );
                    CREATE INDEX calls_status ON calls(status);
                    CREATE INDEX calls_path ON calls(path);
                    CREATE INDEX calls_dst_name ON calls(dst_name);
                    CREATE INDEX calls_src_name ON calls(src_name);
                    CREATE UNIQUE INDEX calls_id ON calls(id);
                    """)
        }
        registerFlowsMigration(&migrator)
        // Statistics over every call (or a time window) read this index alone: a few dozen bytes a call instead of
        // the table's rows with their records (1.3 GB for 1 M calls).
        migrator.registerMigration("calls-v2-statistics-index") { db in
            try db.execute(sql: "CREATE INDEX calls_statistics ON calls(ts, proto, status, latency_ms, flags)")
        }
        registerRollupsMigration(&migrator)
        // Time ranges are read from calls_statistics, which starts with ts: a second index on ts alone only cost
        // every insert another B-tree descent.
        migrator.registerMigration("calls-v3-no-ts-index") { db in
            try db.execute(sql: "DROP INDEX IF EXISTS calls_ts")
        }
        return migrator
    }

    /// Appends calls in one transaction.
    public func insert(_ calls: [Call]) throws {
        try insert(batches: [(calls, [])])
    }

    /// Appends calls and upserts flows (by id) in one transaction: the live dissector's batch.
    public func insert(_ calls: [Call], flows: [Flow]) throws {
        try insert(batches: [(calls, flows)])
    }

    /// Several batches in one transaction, in order (a flow in two batches ends as the later one has it). A commit
    /// writes every page it touched to the WAL: few calls a commit cost a whole page per index each.
    public func insert(batches: [(calls: [Call], flows: [Flow])]) throws {
        guard batches.contains(where: { !$0.calls.isEmpty || !$0.flows.isEmpty }) else { return }
        try pool.write { db in
            var inserter = try CallInserter(db)
            for batch in batches {
                try inserter.insert(batch.calls)
                try upsert(batch.flows, in: db)
            }
            try inserter.finish()
        }
    }

    /// The planner needs statistics to pick the most selective index (without them a three-equality query can read
    /// 100 000 rows instead of 20 000). ANALYZE reads every index (about 1 s per million calls; sampling with
    /// analysis_limit reads only the first keys, useless here), so it runs as the store doubles up to a million
    /// calls, then once per million: a few percent of ingest time.
    static func analyzeIfGrown(_ db: Database, inserted: Int) throws {
        guard inserted > 0 else { return }
        let last = sqlite3_last_insert_rowid(db.sqliteConnection)
        let previous = max(last - Int64(inserted), 0)
        let million: Int64 = 1 << 20
        let crossed = last < million
            ? last >= 1024 && previous.leadingZeroBitCount != last.leadingZeroBitCount
            : previous / million != last / million
        if crossed { try db.execute(sql: "ANALYZE") }
    }

    /// One call by id.
    public func call(id: String) throws -> Call? {
        try pool.read { db in
            let statement = try RawStatement(db, sql: "SELECT call FROM calls WHERE id = ?")
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            return try CallCodec.decode(statement.blob(0))
        }
    }

    /// Calls matching `query`, newest first, one page at a time.
    public func calls(_ query: CallQuery) throws -> CallPage {
        guard let residual = query.residual else {
            return try scan(predicates: query.predicates, access: .none, limit: query.limit, cursor: query.cursor,
                            countBudget: query.countBudget) { _ in true }
        }
        return try scan(predicates: query.predicates, access: .record, limit: query.limit, cursor: query.cursor,
                        countBudget: query.countBudget) { residual($0.pointee) }
    }

    /// The engine under both query forms: SQL for `predicates`, then `residual` on each row as `access` provides it,
    /// newest first; then up to `countBudget` rows in all to count the total.
    func scan(
        predicates: [StorePredicate], access: ScanAccess, limit: Int, cursor: Int64?, countBudget: Int,
        residual: (UnsafePointer<Call>) -> Bool
    ) throws -> CallPage {
        var arguments: [StorePredicate.Value] = []
        var clauses = predicates.map { $0.sql(&arguments) }
        if let cursor {
            clauses.append("seq < ?")
            arguments.append(.integer(cursor))
        }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let selected: [String] =
            switch access {
            case .none, .record: ["call"]
            case .columns(let columns): columns.map(\.column.rawValue)
            }
        var sql = "SELECT " + (["seq"] + selected).joined(separator: ", ") + " FROM calls" + whereSQL + " ORDER BY seq DESC"
        let fullyPushed = if case .none = access { true } else { false }
        // Every row of a fully pushed query matches: one past the page settles whether there is a next page.
        if fullyPushed { sql += " LIMIT \(max(min(limit, Int.max - 1), 0) + 1)" }
        return try pool.read { db in
            let statement = try RawStatement(db, sql: sql)
            for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
            var page = CallPage()
            var pageSequences: [Int64] = []
            var matched = 0
            var scratch = Call(id: "", ts: 0, node: "", captureSource: .ebpf, proto: "", src: Endpoint(ip: "", port: 0),
                               dst: Endpoint(ip: "", port: 0))
            var recentTexts: [RecentTexts] = if case .columns(let columns) = access {
                Array(repeating: RecentTexts(), count: columns.count)
            } else { [] }
            var exhausted = false
            while true {
                // Past a full page, a residual scan keeps reading only to count, and only within the budget.
                if matched >= limit, !fullyPushed, page.scanned >= countBudget { break }
                guard try statement.step() else {
                    exhausted = true
                    break
                }
                page.scanned += 1
                let isMatch: Bool
                switch access {
                case .none:
                    isMatch = true
                    if matched < limit { page.calls.append(try CallCodec.decode(statement.blob(1))) }
                case .columns(let columns):
                    for (index, column) in columns.enumerated() {
                        column.fill(&scratch, from: statement, Int32(index + 1), &recentTexts[index])
                    }
                    isMatch = withUnsafePointer(to: scratch) { residual($0) }
                case .record:
                    let call = try CallCodec.decode(statement.blob(1))
                    isMatch = withUnsafePointer(to: call) { residual($0) }
                    if isMatch, matched < limit { page.calls.append(call) }
                }
                guard isMatch else { continue }
                if matched < limit { pageSequences.append(statement.int64(0)) }
                matched += 1
            }
            if case .columns = access, !pageSequences.isEmpty {
                let lookup = try RawStatement(db, sql: "SELECT call FROM calls WHERE seq = ?")
                for seq in pageSequences {
                    lookup.bind(1, seq)
                    guard try lookup.step() else { throw StoreError("call \(seq) vanished during a read") }
                    page.calls.append(try CallCodec.decode(lookup.blob(0)))
                    lookup.reset()
                }
            }
            // Under `LIMIT limit + 1`, running out of rows means the end only when fewer came.
            if fullyPushed, matched > limit { exhausted = false }
            page.truncated = matched > limit || (matched == limit && !exhausted)
            page.nextCursor = page.truncated ? pageSequences.last : nil
            page.total = matched
            page.totalIsExact = exhausted
            if fullyPushed, !exhausted {
                try Self.count(db, whereSQL: whereSQL, arguments: arguments, budget: countBudget, into: &page)
            }
            return page
        }
    }

    /// A fully pushed query counts in SQL, bounded: `LIMIT budget` keeps a count over a huge store from reading it all.
    private static func count(
        _ db: Database, whereSQL: String, arguments: [StorePredicate.Value], budget: Int, into page: inout CallPage
    ) throws {
        guard budget > page.total else { return }
        let statement = try RawStatement(db, sql: "SELECT count(*) FROM (SELECT 1 FROM calls\(whereSQL) LIMIT ?)")
        for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
        statement.bind(Int32(arguments.count + 1), Int64(min(budget, Int(Int64.max - 1))) + 1)
        guard try statement.step() else { return }
        let counted = Int(statement.int64(0))
        page.total = min(counted, budget)
        page.totalIsExact = counted <= budget
    }

    /// Oldest and newest call times (ms) and how many calls are held.
    public func boundaries() throws -> (oldest: Int64?, newest: Int64?, count: Int) {
        // Three queries in one read: MIN and MAX alone take one index probe each, and COUNT(*) its fastest index; in one
        // statement SQLite scans the table (54 ms instead of 4 ms over a million calls).
        try pool.read { db in
            (try Int64.fetchOne(db, sql: "SELECT MIN(ts) FROM calls"), try Int64.fetchOne(db, sql: "SELECT MAX(ts) FROM calls"),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM calls") ?? 0)
        }
    }

    /// Deletes calls older than `ts` (ms), and their rollups: retention follows the recording's.
    @discardableResult
    public func deleteCalls(olderThan ts: Int64) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM calls WHERE ts < ?", arguments: [ts])
            let deleted = db.changesCount
            try Self.trimRollups(olderThan: ts, db)
            return deleted
        }
    }
}

public struct StoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension CallFlags {
    /// Bit set as stored: gap 1, truncated 2, noResponse 4, noRequest 8.
    public var bits: Int { (gap ? 1 : 0) | (truncated ? 2 : 0) | (noResponse ? 4 : 0) | (noRequest ? 8 : 0) }

    /// The flags of a stored bit set.
    public init(bits: Int) {
        self.init(gap: bits & 1 != 0, truncated: bits & 2 != 0, noResponse: bits & 4 != 0, noRequest: bits & 8 != 0)
    }
}
