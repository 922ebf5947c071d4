import FathomStore

extension LocalAPI.GroupBy {
    /// The store's grouping for this answer's `group_by`.
    var grouping: CallsDatabase.Grouping {
        switch self {
        case .service: .service
        case .endpoint: .endpoint
        case .status: .status
        case .protocol_: .proto
        case .none: .all
        }
    }
}

extension CallStats.Row {
    /// A row from a group's running totals.
    init(group: String, totals: CallsDatabase.GroupTotals) {
        self.group = group
        count = totals.count
        errors = totals.errors
        errorRate = count == 0 ? 0 : Double(errors) / Double(count)
        let percentiles = totals.latencyPercentiles([0.5, 0.9, 0.99])
        p50Ms = percentiles[0]
        p90Ms = percentiles[1]
        p99Ms = percentiles[2]
        firstMs = count == 0 ? 0 : totals.firstMs
        lastMs = count == 0 ? 0 : totals.lastMs
        let span = Double(lastMs - firstMs) / 1000
        perSecond = span > 0 ? Double(count) / span : Double(count)
    }
}

extension CallStats {
    /// How the groups' percentiles were found.
    static func percentilesKind(_ groups: some Collection<CallsDatabase.GroupTotals>) -> String {
        guard groups.contains(where: { !$0.percentilesAreExact }) else { return "exact" }
        return "histogram ±\(Int((LatencyHistogram.relativeError * 100).rounded()))%"
    }
}
