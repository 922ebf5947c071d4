import FathomAttribution
import Foundation
import Hummingbird

/// `GET /mcp/workloads` and `GET /mcp/ips` (Kubeshark's list_workloads and list_ips) and `GET /targets`.
extension AgentRoutes {
    static func addWorkloads(to router: Router<BasicRequestContext>, attribution: AgentAttribution) {
        router.get("/mcp/workloads") { request, _ in
            answer {
                let q = QueryParameters(request.uri)
                var filter = WorkloadFilter()
                filter.namespace = q.string("namespace").flatMap { $0.isEmpty ? nil : $0 }
                filter.kind = try q.optionalChoice("kind", WorkloadKind.allCases.map(\.rawValue)).flatMap { WorkloadKind(rawValue: $0) }
                filter.name = q.string("name").flatMap { $0.isEmpty ? nil : $0 }
                if let selector = q.string("labels"), !selector.isEmpty {
                    do {
                        filter.labels = try LabelSelector(selector)
                    } catch {
                        throw APIError.badArgument("`labels`: \(error)")
                    }
                }
                let limit = try q.int("limit", default: LocalAPI.defaultLimit, in: 1...LocalAPI.maximumLimit)
                return json(workloadList(attribution, filter: filter, limit: limit))
            }
        }
        router.get("/mcp/ips") { request, _ in
            answer {
                let q = QueryParameters(request.uri)
                let limit = try q.int("limit", default: LocalAPI.defaultLimit, in: 1...LocalAPI.maximumLimit)
                return json(
                    ipList(attribution, namespace: q.string("namespace").flatMap { $0.isEmpty ? nil : $0 },
                           ip: q.string("ip").flatMap { $0.isEmpty ? nil : $0 }, at: try q.optionalInt("at"), limit: limit))
            }
        }
        router.get("/targets") { _, _ in json(attribution.targets()) }
    }

    struct WorkloadFilter {
        var namespace: String?
        var kind: WorkloadKind?
        /// Substring of the name.
        var name: String?
        var labels: LabelSelector?

        func matches(_ w: Workload) -> Bool {
            (namespace.map { w.namespace == $0 } ?? true) && (kind.map { w.kind == $0 } ?? true)
                && (name.map { w.name.contains($0) } ?? true) && (labels?.matches(w.labels) ?? true)
        }
    }

    static func workloadList(_ attribution: AgentAttribution, filter: WorkloadFilter, limit: Int) -> WorkloadList {
        let all = attribution.attributor.table.workloads().filter { filter.matches($0.workload) }
        return WorkloadList(
            workloads: all.prefix(limit).map { entry in
                let w = entry.workload
                return WorkloadList.Item(
                    kind: w.kind.rawValue, namespace: w.namespace.isEmpty ? nil : w.namespace, name: w.name,
                    node: w.node.isEmpty ? nil : w.node, labels: w.labels.isEmpty ? nil : w.labels, ips: entry.ips,
                    services: entry.services.isEmpty ? nil : entry.services.sorted(),
                    containers: w.containers.isEmpty ? nil : w.containers,
                    onThisNode: w.kind == .pod ? w.node == attribution.nodeName : nil)
            },
            total: all.count, truncated: all.count > limit, namespaces: attribution.attributor.table.namespaces,
            cluster: attribution.targets().cluster)
    }

    static func ipList(_ attribution: AgentAttribution, namespace: String?, ip: String?, at: Int64?, limit: Int) -> IPList {
        var rows: [IPList.Item] = []
        for (address, owners) in attribution.attributor.table.ipHistory() {
            if let ip, !address.hasPrefix(ip) { continue }
            let kept = owners.filter { owner in
                (namespace.map { owner.workload.namespace == $0 } ?? true)
                    && (at.map { owner.fromMs <= $0 && $0 < (owner.untilMs ?? .max) } ?? true)
            }
            guard !kept.isEmpty else { continue }
            rows.append(IPList.Item(ip: address, owners: kept.map { owner in
                IPList.Owner(kind: owner.workload.kind.rawValue,
                             namespace: owner.workload.namespace.isEmpty ? nil : owner.workload.namespace,
                             name: owner.workload.name, services: owner.services.isEmpty ? nil : owner.services.sorted(),
                             fromMs: owner.fromMs, untilMs: owner.untilMs)
            }))
        }
        return IPList(ips: Array(rows.prefix(limit)), total: rows.count, truncated: rows.count > limit,
                      cluster: attribution.targets().cluster)
    }
}

/// The body of `GET /mcp/workloads`.
struct WorkloadList: Codable, Sendable {
    struct Item: Codable, Sendable {
        var kind: String
        var namespace: String?
        var name: String
        var node: String?
        var labels: [String: String]?
        var ips: [String]
        var services: [String]?
        var containers: [ContainerRef]?
        /// For pods: whether it runs on this agent's node (only those sockets are recorded here).
        var onThisNode: Bool?
    }
    var workloads: [Item]
    var total: Int
    var truncated: Bool
    var namespaces: [String]
    /// "synced", "syncing" or "none" (no Kubernetes API configured: the list is empty for that reason).
    var cluster: String
}

/// The body of `GET /mcp/ips`: each IP with its owners over time (an IP reused by another pod lists both).
struct IPList: Codable, Sendable {
    struct Owner: Codable, Sendable {
        var kind: String
        var namespace: String?
        var name: String
        var services: [String]?
        var fromMs: Int64
        /// nil while it still owns the IP.
        var untilMs: Int64?
    }
    struct Item: Codable, Sendable {
        var ip: String
        var owners: [Owner]
    }
    var ips: [Item]
    var total: Int
    var truncated: Bool
    var cluster: String
}

extension QueryParameters {
    /// One of `choices`, or nil when the argument is absent or empty.
    func optionalChoice(_ name: String, _ choices: [String]) throws -> String? {
        guard let text = string(name), !text.isEmpty else { return nil }
        return try choice(name, choices, default: text)
    }
}
