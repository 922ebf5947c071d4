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
        // Only the columns the grouping needs: grouped by status, protocol or nothing, the query is answered from the
        // calls_statistics index without reading the table.
        let grouped: [String] =
            switch grouping {
            case .service: ["dst_name", "dst_service"]
            case .endpoint: ["method", "path", "dst_name"]
            case .status, .proto, .all: []
            }
        let columns = ["ts", "proto", "status", "latency_ms", "flags"] + grouped + (needsRecord ? ["call"] : [])
        let column = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, Int32($0)) })
        let sql = "SELECT " + columns.joined(separator: ", ") + " FROM calls"
            + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
        return try pool.read { db in
            let statement = try RawStatement(db, sql: sql)
            for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
            var groups: [String: GroupTotals] = [:]
            var recent = Array(repeating: RecentTexts(), count: 5)
            // Formatting a status per row would cost as much as the scan: each status's key is made once.
            var statusKeys: [Int: String] = [:]
            let (method, path, dstName, dstService, record) =
                (column["method"] ?? 0, column["path"] ?? 0, column["dst_name"] ?? 0, column["dst_service"] ?? 0,
                 column["call"] ?? 0)
            while try statement.step() {
                if needsRecord {
                    let call = try CallCodec.decode(statement.blob(record))
                    guard plan.residualMatches(call) else { continue }
                }
                let ts = statement.int64(0)
                let proto = statement.text(1, &recent[0])
                let status = Int(statement.int64(2))
                let noResponse = CallFlags(bits: Int(statement.int64(4))).noResponse
                let key: String
                switch grouping {
                case .service:
                    let service = statement.text(dstService, &recent[1])
                    key = service.isEmpty ? statement.text(dstName, &recent[2]) : service
                case .endpoint:
                    key = "\(statement.text(method, &recent[3])) \(statement.text(dstName, &recent[2]))\(statement.text(path, &recent[4]))"
                case .status:
                    if let known = statusKeys[status] {
                        key = known
                    } else {
                        key = String(status)
                        statusKeys[status] = key
                    }
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

extension CallsDatabase.GroupTotals {
    /// Nearest-rank percentiles (for each p, the smallest latency at or above which p of the calls fall), ascending
    /// `ps` in 0...1. Found by selection rather than sorting: linear in the number of calls, not n log n, which is most of
    /// the cost of statistics over a million calls.
    public func latencyPercentiles(_ ps: [Double]) -> [Double] {
        guard !latencies.isEmpty else { return ps.map { _ in 0 } }
        var values = latencies
        var low = 0
        return ps.map { p in
            let rank = max(0, min(values.count - 1, Int((p * Double(values.count)).rounded(.up)) - 1))
            // Ranks come in ascending order: everything before `low` is already no greater than what follows it.
            let value = Self.select(rank, in: &values, from: max(0, min(low, rank)))
            low = rank
            return value
        }
    }

    /// The value of rank `k` in `values[from...]`, partitioning in place (Hoare, median of three).
    private static func select(_ k: Int, in values: inout [Double], from: Int) -> Double {
        var low = from
        var high = values.count - 1
        while low < high {
            let middle = low + (high - low) / 2
            if values[middle] < values[low] { values.swapAt(middle, low) }
            if values[high] < values[low] { values.swapAt(high, low) }
            if values[high] < values[middle] { values.swapAt(high, middle) }
            let pivot = values[middle]
            var i = low
            var j = high
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j {
                high = j
            } else if k >= i {
                low = i
            } else {
                return values[k]
            }
        }
        return values[k]
    }
}
