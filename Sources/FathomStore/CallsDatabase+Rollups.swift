import FathomModel
import GRDB

/// Per-minute rollups of the calls, in two tables: `call_rollups` has one row per minute and (protocol, status, method,
/// path, destination name and service), `call_rollups_by_destination` the same without method and path (stored as ""),
/// far fewer rows for statistics that need neither. Each row holds the exact count, errors, first and last time,
/// and a latency histogram. They are written in the transaction that inserts the calls and trimmed in the one that
/// deletes them, so they always describe exactly the calls held; statistics over whole minutes read them instead of
/// every call.
extension CallsDatabase {
    /// A rollup's span.
    static let rollupMinuteMs: Int64 = 60_000

    /// The columns a rollup row shares with `calls`: a store predicate on them alone reads the same on both tables.
    static let rollupColumns: Set<StorePredicate.Column> = [.proto, .status, .method, .path, .dstName, .dstService]

    /// A table of rollups.
    enum RollupTable: String, CaseIterable {
        case endpoints = "call_rollups"
        case destinations = "call_rollups_by_destination"

        /// The smaller table that answers `grouping` with `predicates` (on `rollupColumns`).
        static func answering(_ grouping: Grouping, _ predicates: [StorePredicate]) -> RollupTable {
            let needsEndpoints = grouping == .endpoint || predicates.contains { !$0.columns.isDisjoint(with: [.method, .path]) }
            return needsEndpoints ? .endpoints : .destinations
        }
    }

    static func registerRollupsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("calls-v3-rollups") { db in
            // WITHOUT ROWID: rows are stored in key order, so a window of minutes is one range of the table.
            for table in RollupTable.allCases {
                try db.execute(
                    sql: """
                    CREATE TABLE \(table.rawValue) (
                        minute INTEGER NOT NULL,
                        proto TEXT NOT NULL,
                        status INTEGER NOT NULL,
                        method TEXT NOT NULL,
                        path TEXT NOT NULL,
                        dst_name TEXT NOT NULL,
                        dst_service TEXT NOT NULL,
                        calls INTEGER NOT NULL,
                        errors INTEGER NOT NULL,
                        first_ms INTEGER NOT NULL,
                        last_ms INTEGER NOT NULL,
                        latencies BLOB NOT NULL,
                        PRIMARY KEY (minute, proto, status, method, path, dst_name, dst_service)
                    ) WITHOUT ROWID
                    """)
            }
            try rebuildRollups(db, minute: nil)
        }
    }

    /// Removes the rollups of calls older than `ts` (ms); called in the transaction that deletes those calls. A minute
    /// the cut falls inside is rebuilt from the calls left in it.
    static func trimRollups(olderThan ts: Int64, _ db: Database) throws {
        let minute = floorDivision(ts, rollupMinuteMs)
        for table in RollupTable.allCases {
            try db.execute(sql: "DELETE FROM \(table.rawValue) WHERE minute < ?", arguments: [minute])
        }
        let (minuteStart, overflow) = minute.multipliedReportingOverflow(by: rollupMinuteMs)
        guard overflow || minuteStart < ts else { return }
        for table in RollupTable.allCases {
            try db.execute(sql: "DELETE FROM \(table.rawValue) WHERE minute = ?", arguments: [minute])
        }
        try rebuildRollups(db, minute: minute)
    }

    /// Adds to the rollups the calls of one minute, or all calls (the migration of a database made before rollups).
    static func rebuildRollups(_ db: Database, minute: Int64?) throws {
        var sql = "SELECT ts, proto, status, method, path, dst_name, dst_service, latency_ms, flags FROM calls"
        if minute != nil { sql += " WHERE ts >= ? AND ts < ?" }
        let statement = try RawStatement(db, sql: sql)
        if let minute {
            let (start, overflow) = minute.multipliedReportingOverflow(by: rollupMinuteMs)
            guard !overflow else { return }
            statement.bind(1, start)
            statement.bind(2, start.addingReportingOverflow(rollupMinuteMs).overflow ? Int64.max : start + rollupMinuteMs)
        }
        var recent = Array(repeating: RecentTexts(), count: 5)
        var batch = RollupBatch()
        var pending = 0
        while try statement.step() {
            batch.add(ts: statement.int64(0), proto: statement.text(1, &recent[0]), status: Int(statement.int64(2)),
                      method: statement.text(3, &recent[1]), path: statement.text(4, &recent[2]),
                      dstName: statement.text(5, &recent[3]), dstService: statement.text(6, &recent[4]),
                      latencyMs: statement.double(7), noResponse: CallFlags(bits: Int(statement.int64(8))).noResponse)
            pending += 1
            // Bounded memory over a large store: rows written so far are merged with, not replaced.
            if pending == 1 << 20 {
                try batch.write(db)
                batch = RollupBatch()
                pending = 0
            }
        }
        try batch.write(db)
    }

    /// Adds the rollups of `predicates` (on `rollupColumns` only) over minutes [`minutes.lower`, `minutes.upper`) to
    /// `groups`; those groups' percentiles then come from histograms.
    static func rolledUpStatistics(
        _ db: Database, predicates: [StorePredicate], grouping: Grouping, minutes: MinuteSpan,
        into groups: inout [String: GroupTotals]
    ) throws {
        var arguments: [StorePredicate.Value] = []
        var clauses = predicates.map { $0.sql(&arguments) }
        if let lower = minutes.lower {
            clauses.append("minute >= ?")
            arguments.append(.integer(lower))
        }
        if let upper = minutes.upper {
            clauses.append("minute < ?")
            arguments.append(.integer(upper))
        }
        let table = RollupTable.answering(grouping, predicates)
        let sql = "SELECT proto, status, method, path, dst_name, dst_service, calls, errors, first_ms, last_ms, latencies"
            + " FROM \(table.rawValue)" + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
        let statement = try RawStatement(db, sql: sql)
        for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
        var recent = Array(repeating: RecentTexts(), count: 5)
        var keys = GroupKeys()
        while try statement.step() {
            let key: String
            switch grouping {
            case .service:
                let service = statement.text(5, &recent[4])
                key = service.isEmpty ? statement.text(4, &recent[3]) : service
            case .endpoint:
                key = keys.endpoint(method: statement.text(2, &recent[1]), dstName: statement.text(4, &recent[3]),
                                    path: statement.text(3, &recent[2]))
            case .status: key = keys.status(Int(statement.int64(1)))
            case .proto: key = statement.text(0, &recent[0])
            case .all: key = "all"
            }
            try groups[key, default: GroupTotals()].add(
                calls: Int(statement.int64(6)), errors: Int(statement.int64(7)), firstMs: statement.int64(8),
                lastMs: statement.int64(9), encodedLatencies: statement.blob(10))
        }
    }

    /// The whole minutes within a window: [`lower`, `upper`), nil meaning unbounded.
    struct MinuteSpan {
        var lower: Int64?
        var upper: Int64?

        /// The whole minutes within [`start`, `end`) (ms), or nil when there are none.
        init?(start: Int64?, end: Int64?) {
            let minuteMs = CallsDatabase.rollupMinuteMs
            lower = start.map { $0 / minuteMs + ($0 % minuteMs > 0 ? 1 : 0) }
            upper = end.map { CallsDatabase.floorDivision($0, minuteMs) }
            if let lower, let upper, lower >= upper { return nil }
            // A window reaching beyond ±292 million years: its minute boundaries are not representable in ms.
            for bound in [lower, upper] {
                if let bound, bound.multipliedReportingOverflow(by: minuteMs).overflow { return nil }
            }
        }

        /// The parts of [`start`, `end`) outside these minutes, which statistics read from the calls themselves.
        func edges(start: Int64?, end: Int64?) -> [(start: Int64, end: Int64)] {
            var edges: [(start: Int64, end: Int64)] = []
            if let start, let lower, start < lower * CallsDatabase.rollupMinuteMs {
                edges.append((start, lower * CallsDatabase.rollupMinuteMs))
            }
            if let end, let upper, upper * CallsDatabase.rollupMinuteMs < end {
                edges.append((upper * CallsDatabase.rollupMinuteMs, end))
            }
            return edges
        }
    }

    static func floorDivision(_ n: Int64, _ d: Int64) -> Int64 {
        let q = n / d
        return n % d != 0 && n < 0 ? q - 1 : q
    }
}

/// The calls of one batch summed per rollup row, then merged into the stored rows.
struct RollupBatch {
    struct Key: Hashable {
        var minute: Int64
        var proto: String
        var status: Int
        var method: String
        var path: String
        var dstName: String
        var dstService: String
    }

    struct Totals {
        var calls = 0
        var errors = 0
        var firstMs = Int64.max
        var lastMs = Int64.min
        /// Histogram slots of the latencies (two bytes a call until written).
        var slots: [UInt16] = []
    }

    private var endpoints: [Key: Totals] = [:]
    /// The same calls keyed without method and path.
    private var destinations: [Key: Totals] = [:]

    mutating func add(
        ts: Int64, proto: String, status: Int, method: String, path: String, dstName: String, dstService: String,
        latencyMs: Double, noResponse: Bool
    ) {
        var key = Key(minute: CallsDatabase.floorDivision(ts, CallsDatabase.rollupMinuteMs), proto: proto, status: status,
                      method: method, path: path, dstName: dstName, dstService: dstService)
        let failed = CallsDatabase.isFailure(proto: proto, status: status, noResponse: noResponse)
        let slot = noResponse ? nil : UInt16(LatencyHistogram.slot(latencyMs))
        endpoints[key, default: Totals()].add(ts: ts, failed: failed, slot: slot)
        key.method = ""
        key.path = ""
        destinations[key, default: Totals()].add(ts: ts, failed: failed, slot: slot)
    }

    /// Merges these totals into the stored rollup rows.
    func write(_ db: Database) throws {
        try Self.write(endpoints, into: .endpoints, db)
        try Self.write(destinations, into: .destinations, db)
    }

    private static func write(_ rows: [Key: Totals], into table: CallsDatabase.RollupTable, _ db: Database) throws {
        guard !rows.isEmpty else { return }
        let keyColumns = "minute = ? AND proto = ? AND status = ? AND method = ? AND path = ? AND dst_name = ? AND dst_service = ?"
        let select = try RawStatement(
            db, sql: "SELECT calls, errors, first_ms, last_ms, latencies FROM \(table.rawValue) WHERE " + keyColumns)
        let upsert = try RawStatement(
            db,
            sql: """
                INSERT OR REPLACE INTO \(table.rawValue) (minute, proto, status, method, path, dst_name, dst_service,
                    calls, errors, first_ms, last_ms, latencies)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        for (key, totals) in rows {
            var merged = totals
            var histogram = LatencyHistogram()
            for slot in totals.slots { histogram.add(slot: Int(slot), count: 1) }
            Self.bind(key, to: select)
            if try select.step() {
                merged.calls += Int(select.int64(0))
                merged.errors += Int(select.int64(1))
                merged.firstMs = min(merged.firstMs, select.int64(2))
                merged.lastMs = max(merged.lastMs, select.int64(3))
                try histogram.merge(encoded: select.blob(4))
            }
            select.reset()
            Self.bind(key, to: upsert)
            upsert.bind(8, Int64(merged.calls))
            upsert.bind(9, Int64(merged.errors))
            upsert.bind(10, merged.firstMs)
            upsert.bind(11, merged.lastMs)
            upsert.bind(12, blob: histogram.encoded())
            _ = try upsert.step()
            upsert.reset()
        }
    }

    private static func bind(_ key: Key, to statement: borrowing RawStatement) {
        statement.bind(1, key.minute)
        statement.bind(2, key.proto)
        statement.bind(3, Int64(key.status))
        statement.bind(4, key.method)
        statement.bind(5, key.path)
        statement.bind(6, key.dstName)
        statement.bind(7, key.dstService)
    }
}

extension RollupBatch.Totals {
    mutating func add(ts: Int64, failed: Bool, slot: UInt16?) {
        calls += 1
        if failed { errors += 1 }
        if let slot { slots.append(slot) }
        firstMs = min(firstMs, ts)
        lastMs = max(lastMs, ts)
    }
}

extension StorePredicate {
    /// The columns this predicate reads.
    var columns: Set<Column> {
        switch form {
        case .compare(let column, _, _), .member(let column, _, _): [column]
        case .either(let alternatives): alternatives.reduce(into: []) { $0.formUnion($1.columns) }
        }
    }
}
