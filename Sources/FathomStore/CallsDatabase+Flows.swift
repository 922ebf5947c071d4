import FathomKFL
import FathomModel
import Foundation
import GRDB
import GRDBSQLite

/// L4 flows beside the calls: one row per connection or UDP conversation, upserted by flow id so a long-lived flow's
/// periodic updates grow one row. Every field is a column (the ends' attribution beyond ip, port, pod, namespace and
/// service goes in `endpoints` as JSON only when present), so a scan builds flows without decoding records.
extension CallsDatabase {
    static func registerFlowsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("flows-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE flows (
                        seq INTEGER PRIMARY KEY,
                        id TEXT NOT NULL,
                        node TEXT NOT NULL,
                        capture_source TEXT NOT NULL,
                        transport TEXT NOT NULL,
                        proto TEXT NOT NULL,
                        src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, src_pod TEXT NOT NULL, src_namespace TEXT NOT NULL,
                        src_service TEXT NOT NULL,
                        dst_ip TEXT NOT NULL, dst_port INTEGER NOT NULL, dst_pod TEXT NOT NULL, dst_namespace TEXT NOT NULL,
                        dst_service TEXT NOT NULL,
                        start_ms INTEGER NOT NULL,
                        end_ms INTEGER NOT NULL,
                        bytes_sent INTEGER NOT NULL, packets_sent INTEGER NOT NULL,
                        bytes_received INTEGER NOT NULL, packets_received INTEGER NOT NULL,
                        handshake_rtt_ms REAL NOT NULL,
                        mid_stream INTEGER NOT NULL,
                        resets INTEGER NOT NULL, retransmissions INTEGER NOT NULL, gap_bytes INTEGER NOT NULL,
                        end_reason TEXT NOT NULL,
                        endpoints BLOB
                    );
                    CREATE UNIQUE INDEX flows_id ON flows(id);
                    CREATE INDEX flows_end ON flows(end_ms);
                    """)
        }
    }

    private static let flowColumns = [
        "id", "node", "capture_source", "transport", "proto",
        "src_ip", "src_port", "src_pod", "src_namespace", "src_service",
        "dst_ip", "dst_port", "dst_pod", "dst_namespace", "dst_service",
        "start_ms", "end_ms", "bytes_sent", "packets_sent", "bytes_received", "packets_received", "handshake_rtt_ms",
        "mid_stream", "resets", "retransmissions", "gap_bytes", "end_reason", "endpoints",
    ]

    /// Inserts flows, or replaces the row of a flow id already stored (an open flow's update, or its end).
    public func upsert(_ flows: [Flow]) throws {
        guard !flows.isEmpty else { return }
        try pool.write { db in try upsert(flows, in: db) }
    }

    func upsert(_ flows: [Flow], in db: Database) throws {
        guard !flows.isEmpty else { return }
        let columns = Self.flowColumns
        let updates = columns.dropFirst().map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        let statement = try RawStatement(
            db,
            sql: "INSERT INTO flows (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
                + " ON CONFLICT(id) DO UPDATE SET \(updates)")
        let encoder = JSONEncoder()
        for flow in flows {
            var index: Int32 = 0
            func next() -> Int32 {
                index += 1
                return index
            }
            statement.bind(next(), flow.id)
            statement.bind(next(), flow.node)
            statement.bind(next(), flow.captureSource.rawValue)
            statement.bind(next(), flow.transport)
            statement.bind(next(), flow.proto)
            for end in [flow.src, flow.dst] {
                statement.bind(next(), end.ip)
                statement.bind(next(), Int64(end.port))
                statement.bind(next(), end.pod ?? "")
                statement.bind(next(), end.namespace ?? "")
                statement.bind(next(), end.service ?? "")
            }
            statement.bind(next(), flow.start)
            statement.bind(next(), flow.end)
            statement.bind(next(), Int64(flow.bytesSent))
            statement.bind(next(), Int64(flow.packetsSent))
            statement.bind(next(), Int64(flow.bytesReceived))
            statement.bind(next(), Int64(flow.packetsReceived))
            statement.bind(next(), flow.handshakeRttMs)
            statement.bind(next(), Int64(flow.midStream ? 1 : 0))
            statement.bind(next(), Int64(flow.resets))
            statement.bind(next(), Int64(flow.retransmissions))
            statement.bind(next(), Int64(flow.gapBytes))
            statement.bind(next(), flow.endReason)
            let plain = Self.plain(flow.src) == flow.src && Self.plain(flow.dst) == flow.dst
            if !plain, let json = try? encoder.encode([flow.src, flow.dst]) {
                statement.bind(next(), blob: Array(json))
            }
            do {
                _ = try statement.step()
            } catch {
                throw StoreError("cannot store flow \(flow.id): \(error)")
            }
            statement.reset()
        }
    }

    /// The part of an endpoint the columns hold.
    private static func plain(_ end: Endpoint) -> Endpoint {
        Endpoint(ip: end.ip, port: end.port, pod: end.pod, namespace: end.namespace, service: end.service)
    }

    /// Visits flows that overlap [`start`, `end`) (ms, either open) and match `filter` (evaluated on
    /// `Flow.filterView`), in the order they were first stored, newest first, starting below `cursor`. `visit` returns
    /// false to stop. At most `scanBudget` rows are read; the answer says whether the scan reached the end.
    @discardableResult
    public func forEachFlow(
        matching filter: KFLFilter?, start: Int64? = nil, end: Int64? = nil, cursor: Int64? = nil,
        scanBudget: Int = Int.max, _ visit: (_ seq: Int64, _ flow: Flow) throws -> Bool
    ) throws -> FlowScan {
        var clauses: [String] = []
        var arguments: [Int64] = []
        if let start {
            clauses.append("end_ms >= ?")
            arguments.append(start)
        }
        if let end {
            clauses.append("start_ms < ?")
            arguments.append(end)
        }
        if let cursor {
            clauses.append("seq < ?")
            arguments.append(cursor)
        }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT seq, " + Self.flowColumns.joined(separator: ", ") + " FROM flows" + whereSQL + " ORDER BY seq DESC"
        return try pool.read { db in
            let statement = try RawStatement(db, sql: sql)
            for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
            var scan = FlowScan()
            let decoder = JSONDecoder()
            var recent = Array(repeating: RecentTexts(), count: 8)
            while scan.scanned < scanBudget {
                guard try statement.step() else {
                    scan.complete = true
                    return scan
                }
                scan.scanned += 1
                scan.lastSequence = statement.int64(0)
                let flow = Self.flow(statement, &recent, decoder)
                if let filter, !filter.matches(flow.filterView) { continue }
                scan.matched += 1
                guard try visit(statement.int64(0), flow) else { return scan }
            }
            scan.complete = !(try statement.step())
            return scan
        }
    }

    /// The flow of the current row (column 0 is `seq`).
    private static func flow(_ row: borrowing RawStatement, _ recent: inout [RecentTexts], _ decoder: JSONDecoder) -> Flow {
        var flow = Flow(
            id: row.text(1), node: row.text(2, &recent[0]),
            captureSource: CaptureSource(rawValue: row.text(3, &recent[1])) ?? .ebpf, transport: row.text(4, &recent[2]),
            proto: row.text(5, &recent[6]), src: endpoint(row, 6, &recent), dst: endpoint(row, 11, &recent), start: row.int64(16), end: row.int64(17),
            bytesSent: Int(row.int64(18)), packetsSent: Int(row.int64(19)), bytesReceived: Int(row.int64(20)),
            packetsReceived: Int(row.int64(21)), handshakeRttMs: row.double(22), midStream: row.int64(23) != 0,
            resets: Int(row.int64(24)), retransmissions: Int(row.int64(25)), gapBytes: Int(row.int64(26)),
            endReason: row.text(27, &recent[7]))
        let extra = row.blob(28)
        if extra.count > 0, let ends = try? decoder.decode([Endpoint].self, from: Data(extra)), ends.count == 2 {
            flow.src = ends[0]
            flow.dst = ends[1]
        }
        return flow
    }

    /// The endpoint whose five columns start at `first`.
    private static func endpoint(_ row: borrowing RawStatement, _ first: Int32, _ recent: inout [RecentTexts]) -> Endpoint {
        func optional(_ text: String) -> String? { text.isEmpty ? nil : text }
        return Endpoint(
            ip: row.text(first), port: Int(row.int64(first + 1)), pod: optional(row.text(first + 2, &recent[3])),
            namespace: optional(row.text(first + 3, &recent[4])), service: optional(row.text(first + 4, &recent[5])))
    }

    /// One flow by id.
    public func flow(id: String) throws -> Flow? {
        try pool.read { db in
            let statement = try RawStatement(db, sql: "SELECT seq, " + Self.flowColumns.joined(separator: ", ") + " FROM flows WHERE id = ?")
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            var recent = Array(repeating: RecentTexts(), count: 8)
            return Self.flow(statement, &recent, JSONDecoder())
        }
    }

    /// Earliest flow start and latest flow end (ms), and how many flows are held.
    public func flowBoundaries() throws -> (oldest: Int64?, newest: Int64?, count: Int) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT MIN(start_ms), MAX(end_ms), COUNT(*) FROM flows")
            return (row?[0], row?[1], row?[2] ?? 0)
        }
    }

    /// Deletes flows whose last packet is older than `ts` (ms): retention follows the recording's.
    @discardableResult
    public func deleteFlows(olderThan ts: Int64) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM flows WHERE end_ms < ?", arguments: [ts])
            return db.changesCount
        }
    }
}

/// How far a flow scan went.
public struct FlowScan: Sendable {
    /// Rows read.
    public var scanned = 0
    /// Rows that matched the filter (visited).
    public var matched = 0
    /// The scan read every row in range (false: stopped by the visitor or the scan budget).
    public var complete = false
    /// `seq` of the last row read: a cursor that resumes after it.
    public var lastSequence: Int64?
}
