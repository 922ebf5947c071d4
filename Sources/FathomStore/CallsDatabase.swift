import FathomModel
import Foundation
import GRDB

/// A calls database: the real-time one of an agent, or one per snapshot dissection. SQLite in WAL mode, so queries
/// read while the dissector writes; batched inserts in one transaction each; indexes chosen from the queries that
/// matter (time windows, status, path, and the two ends' names), since every index costs ingest speed.
public final class CallsDatabase: Sendable {
    public let path: String
    private let pool: DatabasePool
    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // NORMAL is crash-safe in WAL mode: a kill -9 loses at most the last transactions, never the file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreError("cannot open the calls database \(path): \(error)")
        }
    }

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
                        src_name TEXT NOT NULL,
                        dst_name TEXT NOT NULL,
                        src_namespace TEXT NOT NULL,
                        dst_namespace TEXT NOT NULL,
                        capture_source TEXT NOT NULL,
                        flags INTEGER NOT NULL,
                        call BLOB NOT NULL
                    );
                    CREATE INDEX calls_ts ON calls(ts);
                    CREATE INDEX calls_status ON calls(status, ts);
                    CREATE INDEX calls_path ON calls(path, ts);
                    CREATE INDEX calls_dst_name ON calls(dst_name, ts);
                    CREATE INDEX calls_src_name ON calls(src_name, ts);
                    CREATE UNIQUE INDEX calls_id ON calls(id);
                    """)
        }
        return migrator
    }

    /// Appends calls in one transaction.
    public func insert(_ calls: [Call]) throws {
        guard !calls.isEmpty else { return }
        try pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO calls (id, ts, proto, method, path, status, latency_ms, src_name, dst_name,
                        src_namespace, dst_namespace, capture_source, flags, call)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for call in calls {
                let json = try Self.encoder.encode(call)
                try statement.execute(arguments: [
                    call.id, call.ts, call.proto, call.method, call.path, call.status, call.latencyMs,
                    call.src.name, call.dst.name, call.src.namespace ?? "", call.dst.namespace ?? "",
                    call.captureSource.rawValue, call.flags.bits, json,
                ])
            }
        }
    }

    /// One call by id.
    public func call(id: String) throws -> Call? {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT call FROM calls WHERE id = ?", arguments: [id]).map(Self.decode)
        }
    }

    /// Calls matching `query`, newest first, one page at a time.
    public func calls(_ query: CallQuery) throws -> CallPage {
        try pool.read { db in
            var clauses = query.predicates.map(\.sql)
            var arguments = StatementArguments(query.predicates.map(\.argument))
            if let cursor = query.cursor {
                clauses.append("seq < ?")
                arguments += [cursor]
            }
            let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            let rows = try Row.fetchCursor(
                db, sql: "SELECT seq, call FROM calls \(whereSQL) ORDER BY seq DESC", arguments: arguments)
            var page = CallPage()
            var scanned = 0
            while let row = try rows.next() {
                scanned += 1
                let call = try Self.decode(row["call"])
                guard query.residual?(call) ?? true else { continue }
                if page.calls.count == query.limit {
                    page.truncated = true
                    break
                }
                page.calls.append(call)
                page.nextCursor = row["seq"]
            }
            if !page.truncated { page.nextCursor = nil }
            page.scanned = scanned
            return page
        }
    }

    /// Oldest and newest call times (ms) and how many calls are held.
    public func boundaries() throws -> (oldest: Int64?, newest: Int64?, count: Int) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT MIN(ts), MAX(ts), COUNT(*) FROM calls")
            return (row?[0], row?[1], row?[2] ?? 0)
        }
    }

    /// Deletes calls older than `ts` (ms): retention follows the recording's.
    @discardableResult
    public func deleteCalls(olderThan ts: Int64) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM calls WHERE ts < ?", arguments: [ts])
            return db.changesCount
        }
    }

    private static func decode(_ data: Data) throws -> Call {
        do {
            return try JSONDecoder().decode(Call.self, from: data)
        } catch {
            throw StoreError("a stored call does not decode: \(error)")
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
}
