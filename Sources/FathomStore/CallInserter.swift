import FathomModel
import GRDB
import GRDBSQLite

/// Inserts calls within one transaction: one prepared statement for every batch, the rollups of all of them merged
/// once at the end (each merge reads and rewrites a row per minute and key), and the planner's statistics refreshed
/// when the store has grown enough.
///
/// A row's texts and record are laid out in one reused buffer and bound without SQLite copying them: with a copy per
/// bound value, SQLite's allocations were a tenth of the writer's time.
struct CallInserter: ~Copyable {
    private let db: Database
    private let statement: RawStatement
    private var rollups = RollupBatch()
    private var inserted = 0
    private var row = RowBuffer()

    init(_ db: Database) throws {
        self.db = db
        // The parameters' numbers below follow this column order.
        statement = try RawStatement(
            db,
            sql: """
                INSERT INTO calls (id, ts, proto, method, path, status, latency_ms, node, src_name, dst_name,
                    src_namespace, dst_namespace, src_pod, src_service, dst_pod, dst_service, capture_source, flags, call)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
    }

    /// Appends `calls`; they are read in place, never copied.
    mutating func insert(_ calls: [Call]) throws {
        for index in calls.indices {
            try insert(calls[index])
        }
    }

    private mutating func insert(_ call: borrowing Call) throws {
        row.start()
        row.text(1, call.id)
        row.text(3, call.proto)
        row.text(4, call.method)
        row.text(5, call.path)
        row.text(8, call.node)
        row.text(9, call.src.name)
        row.text(10, call.dst.name)
        row.text(11, call.src.namespace ?? "")
        row.text(12, call.dst.namespace ?? "")
        row.text(13, call.src.pod ?? "")
        row.text(14, call.src.service ?? "")
        row.text(15, call.dst.pod ?? "")
        row.text(16, call.dst.service ?? "")
        row.text(17, call.captureSource.rawValue)
        row.record(19, call)
        statement.bind(2, call.ts)
        statement.bind(6, Int64(call.status))
        statement.bind(7, call.latencyMs)
        statement.bind(18, Int64(call.flags.bits))
        do {
            try row.step(statement)
        } catch {
            statement.reset()
            throw StoreError("cannot store call \(call.id): \(error)")
        }
        statement.reset()
        rollups.add(ts: call.ts, proto: call.proto, status: call.status, method: call.method, path: call.path,
                    dstName: call.dst.name, dstService: call.dst.service ?? "", latencyMs: call.latencyMs,
                    noResponse: call.flags.noResponse)
        inserted += 1
    }

    /// Writes the rollups of every call inserted, then refreshes the planner's statistics when due.
    consuming func finish() throws {
        try rollups.write(db)
        try CallsDatabase.analyzeIfGrown(db, inserted: inserted)
    }
}

/// One row's bound texts and record, back to back in a buffer that lives across rows.
private struct RowBuffer {
    private var bytes: [UInt8] = []
    private var fields: [(parameter: Int32, start: Int, count: Int, isBlob: Bool)] = []

    mutating func start() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
    }

    mutating func text(_ parameter: Int32, _ value: String) {
        let start = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((parameter, start, bytes.count - start, false))
    }

    mutating func record(_ parameter: Int32, _ call: borrowing Call) {
        let start = bytes.count
        CallCodec.encode(call, into: &bytes)
        fields.append((parameter, start, bytes.count - start, true))
    }

    /// Binds every field to `statement` and steps it while the bytes are pinned; the caller resets it.
    func step(_ statement: borrowing RawStatement) throws {
        try bytes.withUnsafeBytes { buffer in
            for field in fields {
                let value = UnsafeRawBufferPointer(rebasing: buffer[field.start..<field.start + field.count])
                statement.bindUnretained(field.parameter, value, isBlob: field.isBlob)
            }
            _ = try statement.step()
        }
    }
}
