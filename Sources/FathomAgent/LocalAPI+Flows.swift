import FathomKFL
import FathomModel
import FathomStore
import Foundation

/// L4 flows: listed one by one, aggregated into top talkers, or summarised (bytes by namespace and protocol,
/// handshake RTT percentiles, resets, retransmissions, gaps).
extension LocalAPI {
    /// How `/mcp/flows` groups flows; every grouping is sorted by bytes, largest first (top talkers).
    enum FlowAggregate: String, CaseIterable, Sendable {
        case none, src, dst, pair, namespace, protocol_ = "protocol", node
    }

    struct ListFlowsRequest: Sendable {
        var kfl = ""
        var aggregate = FlowAggregate.none
        var limit = LocalAPI.defaultLimit
        var startMs: Int64?
        var endMs: Int64?
        var cursor: Int64?
    }

    /// Rows a flow listing reads to fill a page and count; rows an aggregation or summary reads in all.
    static let flowCountBudget = 100_000
    static let flowScanBudget = 2_000_000

    func listFlows(_ request: ListFlowsRequest) throws -> FlowList {
        let filter = try compileFlowFilter(request.kfl)
        let end = request.endMs.map { $0 + 1 }
        guard request.aggregate == .none else { return try aggregateFlows(request, filter, end) }
        var page: [Flow] = []
        var sequences: [Int64] = []
        let scan = try calls.forEachFlow(
            matching: filter, start: request.startMs, end: end, cursor: request.cursor, scanBudget: Self.flowCountBudget
        ) { seq, flow in
            if page.count < request.limit {
                page.append(flow)
                sequences.append(seq)
            }
            return true
        }
        // Past the page, a match settles that there is more; a scan stopped by its budget resumes after its last row.
        let cursor: Int64? = scan.matched > request.limit ? sequences.last : (scan.complete ? nil : scan.lastSequence)
        return FlowList(
            aggregate: FlowAggregate.none.rawValue, flows: page, groups: nil, returned: page.count, total: scan.matched,
            totalIsExact: scan.complete, truncated: cursor != nil, nextCursor: cursor.map(String.init),
            covers: try flowCoverage(startMs: request.startMs, endMs: request.endMs, scanned: scan))
    }

    private func aggregateFlows(_ request: ListFlowsRequest, _ filter: KFLFilter?, _ end: Int64?) throws -> FlowList {
        var groups: [String: FlowGroup] = [:]
        let scan = try calls.forEachFlow(
            matching: filter, start: request.startMs, end: end, scanBudget: Self.flowScanBudget
        ) { _, flow in
            for key in keys(flow, request.aggregate) { groups[key, default: FlowGroup(key: key)].add(flow) }
            return true
        }
        let sorted = groups.values.sorted { ($0.bytes, $1.key) > ($1.bytes, $0.key) }
        // The cursor of an aggregation is the offset of the next group.
        let offset = min(max(Int(request.cursor ?? 0), 0), sorted.count)
        let page = Array(sorted[offset..<min(offset + request.limit, sorted.count)])
        let next = offset + page.count < sorted.count ? offset + page.count : nil
        return FlowList(
            aggregate: request.aggregate.rawValue, flows: nil, groups: page, returned: page.count, total: sorted.count,
            totalIsExact: scan.complete, truncated: next != nil, nextCursor: next.map(String.init),
            covers: try flowCoverage(startMs: request.startMs, endMs: request.endMs, scanned: scan))
    }

    /// The groups a flow counts in: one, but one per distinct namespace of its ends for `namespace`.
    private func keys(_ flow: Flow, _ aggregate: FlowAggregate) -> [String] {
        func end(_ e: Endpoint) -> String { e.name == e.ip ? "\(e.ip):\(e.port)" : "\(e.name):\(e.port)" }
        switch aggregate {
        case .none: return []
        case .src: return [flow.src.name]
        case .dst: return [end(flow.dst)]
        case .pair: return ["\(flow.src.name) -> \(end(flow.dst))"]
        case .namespace:
            let names = Set([flow.src.namespace ?? "", flow.dst.namespace ?? ""].filter { !$0.isEmpty })
            return names.isEmpty ? ["(no namespace)"] : names.sorted()
        case .protocol_: return ["\(flow.transport)/\(flow.proto.isEmpty ? "unknown" : flow.proto)"]
        case .node: return [flow.node]
        }
    }

    func flowSummary(kfl: String, startMs: Int64?, endMs: Int64?) throws -> FlowSummary {
        let filter = try compileFlowFilter(kfl)
        var summary = FlowSummary.Totals()
        var namespaces: [String: FlowGroup] = [:]
        var protocols: [String: FlowGroup] = [:]
        var endReasons: [String: Int] = [:]
        var rtts: [Double] = []
        let scan = try calls.forEachFlow(
            matching: filter, start: startMs, end: endMs.map { $0 + 1 }, scanBudget: Self.flowScanBudget
        ) { _, flow in
            summary.add(flow)
            for key in keys(flow, .namespace) { namespaces[key, default: FlowGroup(key: key)].add(flow) }
            for key in keys(flow, .protocol_) { protocols[key, default: FlowGroup(key: key)].add(flow) }
            endReasons[flow.endReason.isEmpty ? "open" : flow.endReason, default: 0] += 1
            if flow.handshakeRttMs > 0 { rtts.append(flow.handshakeRttMs) }
            return true
        }
        rtts.sort()
        // Nearest rank, as the call stats compute it.
        func percentile(_ p: Double) -> Double {
            guard !rtts.isEmpty else { return 0 }
            return rtts[max(0, Int((p * Double(rtts.count)).rounded(.up)) - 1)]
        }
        func top(_ groups: [String: FlowGroup]) -> [FlowGroup] {
            Array(groups.values.sorted { ($0.bytes, $1.key) > ($1.bytes, $0.key) }.prefix(20))
        }
        return FlowSummary(
            totals: summary,
            handshakeRttMs: .init(samples: rtts.count, p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99)),
            endReasons: endReasons, byNamespace: top(namespaces), byProtocol: top(protocols),
            covers: try flowCoverage(startMs: startMs, endMs: endMs, scanned: scan))
    }

    /// The filter, refusing call-only fields (they would read their default on every flow and silently match nothing).
    private func compileFlowFilter(_ kfl: String) throws -> KFLFilter? {
        let filter = try compile(kfl)
        let read = filter.plan.residualFields.union(filter.plan.pushed.map(\.field))
        if let wrong = read.sorted().first(where: { !KFLCatalogue.flowFilterFields.contains($0) }) {
            throw APIError.badArgument(
                "`\(wrong)` is a call field, not a flow field; flow filters read the ends (src.*/dst.*, namespaces), "
                    + "protocol, node_id, capture_source, timestamp, id and the flow fields: "
                    + KFL.fields.filter { $0.group == "flow" }.map(\.name).joined(separator: ", "))
        }
        return filter.plan.isFullyPushed && filter.plan.pushed.isEmpty ? nil : filter
    }

    private func flowCoverage(startMs: Int64?, endMs: Int64?, scanned: FlowScan) throws -> FlowCoverage {
        let b = try calls.flowBoundaries()
        var notes: [String] = []
        if !dissection.isEnabled { notes.append("live dissection is off: flows after it was turned off are missing") }
        if status.captureSource == .pcap {
            notes.append("capture fell back to libpcap (\(status.fallbackReason ?? "eBPF unavailable")): no cgroup or process context")
        }
        if b.count == 0 { notes.append("no flows are stored yet") }
        if !scanned.complete && scanned.scanned >= Self.flowScanBudget {
            notes.append("only the newest \(scanned.scanned) flows were read: narrow the window or the filter")
        }
        notes.append("open flows are updated every \(LiveDissection.openFlowUpdateNanoseconds / 1_000_000_000) s of activity")
        return FlowCoverage(
            nodes: [node], captureSources: [status.captureSource.rawValue], liveDissection: dissection.isEnabled,
            flowsOldestMs: b.oldest, flowsNewestMs: b.newest, flowsStored: b.count, queriedStartMs: startMs,
            queriedEndMs: endMs, notes: notes)
    }
}

// MARK: - Answers

struct FlowCoverage: Codable, Sendable {
    var nodes: [String]
    var captureSources: [String]
    var liveDissection: Bool
    var flowsOldestMs: Int64?
    var flowsNewestMs: Int64?
    var flowsStored: Int
    var queriedStartMs: Int64?
    var queriedEndMs: Int64?
    var notes: [String]
}

/// Flows that share a key (a source, a destination, a pair, a namespace, …) and their totals.
struct FlowGroup: Codable, Sendable {
    var key: String
    var flows = 0
    var open = 0
    var bytesSent = 0
    var bytesReceived = 0
    var bytes = 0
    var packets = 0
    var resets = 0
    var retransmissions = 0
    var firstMs: Int64 = .max
    var lastMs: Int64 = 0

    init(key: String) { self.key = key }

    mutating func add(_ flow: Flow) {
        flows += 1
        if flow.endReason.isEmpty { open += 1 }
        bytesSent += flow.bytesSent
        bytesReceived += flow.bytesReceived
        bytes += flow.bytesSent + flow.bytesReceived
        packets += flow.packetsSent + flow.packetsReceived
        resets += flow.resets
        retransmissions += flow.retransmissions
        firstMs = min(firstMs, flow.start)
        lastMs = max(lastMs, flow.end)
    }
}

struct FlowList: Codable, Sendable {
    var aggregate: String
    /// With `aggregate` none: the flows, in the order they were first stored, newest first.
    var flows: [Flow]?
    /// With an aggregate: the groups, most bytes first.
    var groups: [FlowGroup]?
    var returned: Int
    /// Flows (or groups) matching from this page on; a lower bound when `totalIsExact` is false.
    var total: Int
    var totalIsExact: Bool
    var truncated: Bool
    var nextCursor: String?
    var covers: FlowCoverage

    enum CodingKeys: String, CodingKey {
        case aggregate, flows, groups, returned, total, totalIsExact, truncated, nextCursor, covers
    }

    /// `next_cursor` is always present (null on the last page), as on call lists.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(aggregate, forKey: .aggregate)
        try c.encodeIfPresent(flows, forKey: .flows)
        try c.encodeIfPresent(groups, forKey: .groups)
        try c.encode(returned, forKey: .returned)
        try c.encode(total, forKey: .total)
        try c.encode(totalIsExact, forKey: .totalIsExact)
        try c.encode(truncated, forKey: .truncated)
        try c.encode(nextCursor, forKey: .nextCursor)
        try c.encode(covers, forKey: .covers)
    }
}

struct FlowSummary: Codable, Sendable {
    struct Totals: Codable, Sendable {
        var flows = 0
        var open = 0
        var tcp = 0
        var udp = 0
        var bytesSent = 0
        var bytesReceived = 0
        var packets = 0
        /// Flows with at least one RST, and RSTs in all.
        var flowsReset = 0
        var resets = 0
        var retransmissions = 0
        /// Flows with bytes never captured, and those bytes.
        var flowsWithGaps = 0
        var gapBytes = 0
        /// Flows whose start the capture missed (no handshake, no RTT).
        var midStream = 0

        mutating func add(_ flow: Flow) {
            flows += 1
            if flow.endReason.isEmpty { open += 1 }
            if flow.transport == "tcp" { tcp += 1 } else if flow.transport == "udp" { udp += 1 }
            bytesSent += flow.bytesSent
            bytesReceived += flow.bytesReceived
            packets += flow.packetsSent + flow.packetsReceived
            if flow.resets > 0 { flowsReset += 1 }
            resets += flow.resets
            retransmissions += flow.retransmissions
            if flow.gapBytes > 0 { flowsWithGaps += 1 }
            gapBytes += flow.gapBytes
            if flow.midStream { midStream += 1 }
        }
    }

    struct Percentiles: Codable, Sendable {
        var samples: Int
        var p50: Double
        var p90: Double
        var p99: Double
    }

    var totals: Totals
    var handshakeRttMs: Percentiles
    /// "fin", "rst", "timeout", "capture_end", or "open" → flows.
    var endReasons: [String: Int]
    /// Top 20 by bytes.
    var byNamespace: [FlowGroup]
    var byProtocol: [FlowGroup]
    var covers: FlowCoverage
}
