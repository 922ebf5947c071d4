import FathomKFL
import FathomModel
import GRDB

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
        /// Latencies of the calls that had a response, unsorted, read call by call.
        public var latencies: [Double] = []
        /// When rollups answered part of the query: the latencies they held. Percentiles then come from it, with
        /// `latencies` added.
        public var histogram: LatencyHistogram?
        public var firstMs = Int64.max
        public var lastMs = Int64.min
    }

    /// Totals per group of the calls matching `filter` within [`start`, `end`) (ms). Counts, errors and times are
    /// always exact. Percentiles are exact too, unless the filter reads only the rolled-up columns (protocol, status,
    /// method, path, destination name and service) and the window holds a whole minute: then the whole minutes come
    /// from the per-minute rollups and percentiles from their histograms (`GroupTotals.histogram`, within
    /// `LatencyHistogram.relativeError`), and only the partial minutes at the window's edges are read call by call.
    /// `exact` forces the call-by-call answer.
    public func statistics(
        matching filter: KFLFilter, grouping: Grouping, start: Int64? = nil, end: Int64? = nil, exact: Bool = false
    ) throws -> [String: GroupTotals] {
        let plan = filter.plan.keepingPushed { KFLPushDown.translate($0) != nil }
        let predicates = plan.pushed.flatMap { KFLPushDown.translate($0) ?? [] }
        let rolledUp = !exact && plan.isFullyPushed
            && predicates.allSatisfy { $0.columns.isSubset(of: Self.rollupColumns) }
        return try pool.read { db in
            var groups: [String: GroupTotals] = [:]
            guard rolledUp, let minutes = MinuteSpan(start: start, end: end) else {
                try Self.scanStatistics(db, plan: plan, predicates: predicates, start: start, end: end, grouping: grouping,
                                        into: &groups)
                return groups
            }
            try Self.rolledUpStatistics(db, predicates: predicates, grouping: grouping, minutes: minutes, into: &groups)
            for edge in minutes.edges(start: start, end: end) {
                try Self.scanStatistics(db, plan: plan, predicates: predicates, start: edge.start, end: edge.end,
                                        grouping: grouping, into: &groups)
            }
            // One kind of percentile in one answer: a group seen only at the edges is counted in a histogram too.
            for key in groups.keys where groups[key]?.histogram == nil { groups[key]?.histogram = LatencyHistogram() }
            return groups
        }
    }

    /// The call-by-call answer: adds the calls matching `predicates` and the plan's residual within [`start`, `end`).
    private static func scanStatistics(
        _ db: Database, plan: KFLPlan, predicates: [StorePredicate], start: Int64?, end: Int64?, grouping: Grouping,
        into groups: inout [String: GroupTotals]
    ) throws {
        var predicates = predicates
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
        let statement = try RawStatement(db, sql: sql)
        for (index, argument) in arguments.enumerated() { statement.bind(Int32(index + 1), argument) }
        var recent = Array(repeating: RecentTexts(), count: 5)
        var keys = GroupKeys()
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
                key = keys.endpoint(method: statement.text(method, &recent[3]), dstName: statement.text(dstName, &recent[2]),
                                    path: statement.text(path, &recent[4]))
            case .status: key = keys.status(status)
            case .proto: key = proto
            case .all: key = "all"
            }
            groups[key, default: GroupTotals()].add(
                ts: ts, latencyMs: statement.double(3), noResponse: noResponse,
                failed: isFailure(proto: proto, status: status, noResponse: noResponse))
        }
    }

    /// Whether a call counts as an error: HTTP 5xx, other protocols' non-zero status, or no response.
    static func isFailure(proto: String, status: Int, noResponse: Bool) -> Bool {
        noResponse || (proto.hasPrefix("http") ? status >= 500 : status != 0)
    }
}

/// Group names as statistics spell them.
struct GroupKeys {
    /// Formatting a status per row would cost as much as the scan: each status's name is made once.
    private var statuses: [Int: String] = [:]

    mutating func status(_ status: Int) -> String {
        if let known = statuses[status] { return known }
        let name = String(status)
        statuses[status] = name
        return name
    }

    func endpoint(method: String, dstName: String, path: String) -> String { "\(method) \(dstName)\(path)" }
}

extension CallsDatabase.GroupTotals {
    mutating func add(ts: Int64, latencyMs: Double, noResponse: Bool, failed: Bool) {
        count += 1
        if failed { errors += 1 }
        if !noResponse { latencies.append(latencyMs) }
        firstMs = min(firstMs, ts)
        lastMs = max(lastMs, ts)
    }

    /// Adds one rollup row.
    mutating func add(calls: Int, errors: Int, firstMs: Int64, lastMs: Int64, encodedLatencies: UnsafeRawBufferPointer) throws {
        count += calls
        self.errors += errors
        self.firstMs = min(self.firstMs, firstMs)
        self.lastMs = max(self.lastMs, lastMs)
        var histogram = self.histogram ?? LatencyHistogram()
        self.histogram = nil  // keeps the histogram's storage unshared while it grows
        try histogram.merge(encoded: encodedLatencies)
        self.histogram = histogram
    }

    /// True when `latencyPercentiles` reads latencies one by one; false when from histograms.
    public var percentilesAreExact: Bool { histogram == nil }
}

extension CallsDatabase.GroupTotals {
    /// Nearest-rank percentiles (for each p, the smallest latency at or above which p of the calls fall), ascending
    /// `ps` in 0...1. Found by selection rather than sorting: linear in the number of calls, not n log n, which is most of
    /// the cost of statistics over a million calls.
    /// With a histogram, they are its percentiles (with `latencies` counted in it), each within
    /// `LatencyHistogram.relativeError` of the exact one.
    public func latencyPercentiles(_ ps: [Double]) -> [Double] {
        if var histogram {
            for latency in latencies { histogram.add(latency) }
            return histogram.percentiles(ps)
        }
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
