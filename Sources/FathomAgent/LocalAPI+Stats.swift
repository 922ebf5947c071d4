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
        let latencies = totals.latencies.sorted()
        // Nearest rank: the smallest latency at or above which p of the calls fall.
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return latencies[max(0, Int((p * Double(latencies.count)).rounded(.up)) - 1)]
        }
        p50Ms = percentile(0.5)
        p90Ms = percentile(0.9)
        p99Ms = percentile(0.99)
        firstMs = count == 0 ? 0 : totals.firstMs
        lastMs = count == 0 ? 0 : totals.lastMs
        let span = Double(lastMs - firstMs) / 1000
        perSecond = span > 0 ? Double(count) / span : Double(count)
    }
}
