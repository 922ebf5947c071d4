import FathomKFL
import FathomModel

/// Call statistics grouped in one pass over the columns: a filter the store answers in SQL never decodes a record,
/// so grouping a million calls reads nine small columns instead of a million records.
extension CallsDatabase {
    /// What calls are grouped by.
    public enum Grouping: Sendable {
        /// The destination's service, else its name.
        case service
        /// "METHOD dst.name/path".
        case endpoint
        case status
        case proto
        case all
    }

    /// The running totals of one group.
    public struct GroupTotals: Sendable {
        public var count = 0
        /// HTTP 5xx, other protocols' non-zero status, or no response.
        public var errors = 0
        /// Latencies of the calls that had a response, unsorted.
        public var latencies: [Double] = []
        public var firstMs = Int64.max
        public var lastMs = Int64.min
    }

    /// Totals per group of the calls matching `filter` within [`start`, `end`) (ms).
    public func statistics(
        matching filter: KFLFilter, grouping: Grouping, start: Int64? = nil, end: Int64? = nil
    ) throws -> [String: GroupTotals] {
        let plan = filter.plan.keepingPushed { KFLPushDown.translate($0) != nil }
        var predicates = plan.pushed.flatMap { KFLPushDown.translate($0) ?? [] }
        if let start { predicates.append(StorePredicate(.ts, .greaterOrEqual, .integer(start))) }
        if let end { predicates.append(StorePredicate(.ts, .less, .integer(end))) }
        var arguments: [StorePredicate.Value] = []
        let clauses = predicates.map { $0.sql(&arguments) }
        // A residual the store cannot answer is evaluated on the decoded record, exactly as a listing would.
        let needsRecord = !plan.isFullyPushed
        let sql = "SELECT ts, proto, status, latency_ms, flags, method, path, dst_name, dst_service"
            + (needsRecord ? ", call" : "") + " FROM calls"
            + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
        return try pool.read { db in
            let statement = try RawStatement(db, sql: sql)
            for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
            var groups: [String: GroupTotals] = [:]
            var recent = Array(repeating: RecentTexts(), count: 5)
            while try statement.step() {
                if needsRecord {
                    let call = try CallCodec.decode(statement.blob(9))
                    guard plan.residualMatches(call) else { continue }
                }
                let ts = statement.int64(0)
                let proto = statement.text(1, &recent[0])
                let status = Int(statement.int64(2))
                let noResponse = CallFlags(bits: Int(statement.int64(4))).noResponse
                let key: String
                switch grouping {
                case .service:
                    let service = statement.text(8, &recent[1])
                    key = service.isEmpty ? statement.text(7, &recent[2]) : service
                case .endpoint:
                    key = "\(statement.text(5, &recent[3])) \(statement.text(7, &recent[2]))\(statement.text(6, &recent[4]))"
                case .status: key = String(status)
                case .proto: key = proto
                case .all: key = "all"
                }
                groups[key, default: GroupTotals()].add(
                    ts: ts, latencyMs: statement.double(3), noResponse: noResponse,
                    failed: noResponse || (proto.hasPrefix("http") ? status >= 500 : status != 0))
            }
            return groups
        }
    }
}

extension CallsDatabase.GroupTotals {
    mutating func add(ts: Int64, latencyMs: Double, noResponse: Bool, failed: Bool) {
        count += 1
        if failed { errors += 1 }
        if !noResponse { latencies.append(latencyMs) }
        firstMs = min(firstMs, ts)
        lastMs = max(lastMs, ts)
    }
}
