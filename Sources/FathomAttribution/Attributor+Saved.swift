/// What a snapshot keeps of attribution, so that its traffic is named later (after pods are deleted, processes have
/// exited, or the agent restarted) as it would have been named live.
public struct SavedAttribution: Sendable, Codable, Equatable {
    /// "synced", "syncing" or "none" (no Kubernetes API) when the snapshot was taken.
    public var cluster: String
    public var workloads: WorkloadTable.Saved
    public var processes: ProcessHistory.Saved
    public var dnsNames: [DNSNames.SavedName]
    /// cgroup id (decimal) → path, every cgroup of the node.
    public var cgroups: [String: String]
}

extension Attributor {
    /// The tables as they name traffic of `fromMs...untilMs`.
    public func saved(fromMs: Int64, untilMs: Int64) -> SavedAttribution {
        let cluster: String = switch clusterStateNow {
        case .none: "none"
        case .syncing: "syncing"
        case .synced: "synced"
        }
        var paths = cgroups?.scan() ?? [:]
        paths.merge(savedCgroupPaths) { live, _ in live }
        return SavedAttribution(
            cluster: cluster, workloads: table.saved(fromMs: fromMs, untilMs: untilMs),
            processes: processHistory?.saved(fromMs: fromMs, untilMs: untilMs) ?? ProcessHistory.Saved(spans: [], sockets: []),
            dnsNames: dnsNames.saved(fromMs: fromMs, untilMs: untilMs),
            cgroups: Dictionary(uniqueKeysWithValues: paths.map { (String($0.key), $0.value) }))
    }

    /// An attributor answering from what a snapshot saved only: no live cluster, hierarchy or /proc.
    public convenience init(restoring saved: SavedAttribution) {
        self.init(
            table: WorkloadTable(restoring: saved.workloads), dnsNames: DNSNames(restoring: saved.dnsNames),
            processHistory: ProcessHistory(restoring: saved.processes),
            savedCgroupPaths: Dictionary(saved.cgroups.compactMap { key, path in UInt64(key).map { ($0, path) } }) { a, _ in a })
        switch saved.cluster {
        case "synced": setClusterSynced(true)
        case "syncing": setClusterSynced(false)
        default: break
        }
    }
}
