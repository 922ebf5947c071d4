import FathomModel
import Synchronization

/// How an endpoint was named (the value of `Endpoint.resolution`).
public enum AttributionStatus: String, Sendable {
    case pod, service, node
    /// A local process outside any pod.
    case host
    case dns, unknown
    /// The Kubernetes table has not finished its first list: names may be missing.
    case notSynced = "not-synced"
    /// No Kubernetes API is configured: only local and DNS identity.
    case noCluster = "no-cluster"
}

/// Names both ends of flows and calls at ingest time: one `attribute` call per endpoint. Local evidence (cgroup id,
/// pid) wins over the IP table, because host-network pods share their node's IP.
public final class Attributor: Sendable {
    public let table: WorkloadTable
    public let dnsNames: DNSNames
    public let cgroups: CgroupResolver?
    public let procfs: ProcFS?
    /// Processes and socket owners from the kernel's events; `/proc` answers for what it does not know.
    public let processHistory: ProcessHistory?
    /// cgroup id → path as a snapshot saved it, for cgroups gone from the live hierarchy.
    let savedCgroupPaths: [UInt64: String]
    private let clusterState = Mutex(ClusterState.none)
    private let processes = Mutex<[Int: (record: ProcessRecord?, fetchedMs: Int64)]>([:])
    private let cgroupProcesses = Mutex<[UInt64: (owner: CgroupProcess?, fetchedMs: Int64)]>([:])
    /// Processes are re-read from /proc after this long (pids get reused, processes exec).
    static let processCacheMs: Int64 = 30_000
    static let processCacheCapacity = 65_536

    enum ClusterState { case none, syncing, synced }

    public init(table: WorkloadTable = WorkloadTable(), dnsNames: DNSNames = DNSNames(), cgroups: CgroupResolver? = nil,
                procfs: ProcFS? = nil, processHistory: ProcessHistory? = nil, savedCgroupPaths: [UInt64: String] = [:]) {
        self.table = table
        self.dnsNames = dnsNames
        self.cgroups = cgroups
        self.procfs = procfs
        self.processHistory = processHistory
        self.savedCgroupPaths = savedCgroupPaths
    }

    /// The path of a cgroup: as saved with a snapshot, else from the live hierarchy.
    public func cgroupPath(ofCgroup id: UInt64) -> String? {
        savedCgroupPaths[id] ?? cgroups?.path(ofCgroup: id)
    }

    /// Called by the Kubernetes watcher: `false` while it lists for the first time, `true` once it has.
    public func setClusterSynced(_ synced: Bool) {
        clusterState.withLock { $0 = synced ? .synced : .syncing }
    }

    var clusterStateNow: ClusterState { clusterState.withLock { $0 } }

    /// The Kubernetes table has been listed once (names of cluster workloads are available).
    public var isClusterSynced: Bool { clusterState.withLock { $0 == .synced } }

    /// Fills the identity fields of `endpoint` (pod, namespace, service, node, labels, container, containerID,
    /// process, pid, dns, resolution) as of `timestampMs`. `cgroupID` and `pid` are given for the local end when the
    /// capture knows them.
    public func attribute(_ endpoint: inout Endpoint, timestampMs: Int64, cgroupID: UInt64? = nil, pid: Int? = nil) {
        var identity = CgroupIdentity()
        var pid = pid
        if pid == nil, let cgroupID, let port = UInt16(exactly: endpoint.port) {
            pid = processHistory?.socketOwner(cgroupID: cgroupID, port: port, atMs: timestampMs)
        }
        if let pid, let process = process(pid, nowMs: timestampMs) {
            endpoint.pid = pid
            endpoint.process = process.name
            identity = process.identity
        }
        if identity.isEmpty, let cgroupID, let path = cgroupPath(ofCgroup: cgroupID) { identity = CgroupIdentity(cgroupPath: path) }
        if endpoint.process == nil, let cgroupID, let owner = cgroupProcess(cgroupID, nowMs: timestampMs) {
            endpoint.process = owner.name
            endpoint.pid = owner.pid
        }
        endpoint.containerID = identity.containerID ?? endpoint.containerID

        let key = IPKey(endpoint.ip)
        var status = AttributionStatus.unknown
        let local = identity.containerID.flatMap { table.pod(containerID: $0) } ?? identity.podUID.flatMap { table.pod(uid: $0) }
        if let resolved = local ?? key.flatMap({ table.lookup($0, at: timestampMs) }) {
            apply(resolved, to: &endpoint)
            status = AttributionStatus(rawValue: resolved.workload.kind.rawValue) ?? .unknown
        } else if endpoint.process != nil {
            status = .host
        }
        if let key, let name = dnsNames.name(for: key, at: timestampMs) {
            endpoint.dns = name
            if status == .unknown { status = .dns }
        }
        if status == .unknown || status == .host || status == .dns {
            switch clusterState.withLock({ $0 }) {
            case .none where status == .unknown: status = .noCluster
            case .syncing: status = .notSynced
            default: break
            }
        }
        endpoint.resolution = status.rawValue
    }

    /// A new endpoint for `ip:port`, attributed.
    public func endpoint(ip: String, port: Int, timestampMs: Int64, cgroupID: UInt64? = nil, pid: Int? = nil) -> Endpoint {
        var endpoint = Endpoint(ip: ip, port: port)
        attribute(&endpoint, timestampMs: timestampMs, cgroupID: cgroupID, pid: pid)
        return endpoint
    }

    /// Called by the process tracer when a process exits or execs, so the next lookup reads /proc again.
    public func forgetProcess(_ pid: Int) {
        _ = processes.withLock { $0.removeValue(forKey: pid) }
    }

    private func apply(_ resolved: Resolved, to endpoint: inout Endpoint) {
        let w = resolved.workload
        switch w.kind {
        case .pod:
            endpoint.pod = w.name
            endpoint.namespace = w.namespace
            endpoint.node = w.node.isEmpty ? nil : w.node
            endpoint.labels = w.labels.isEmpty ? nil : w.labels
            endpoint.service = resolved.services.min()
            let container = resolved.container ?? endpoint.containerID.flatMap { id in w.containers.first { $0.id == id } }
            if let container {
                endpoint.container = container.name
                endpoint.containerID = container.id
            } else if w.containers.count == 1, endpoint.containerID == nil, let only = w.containers.first {
                // A pod IP with a single container: that container answers.
                endpoint.container = only.name
                endpoint.containerID = only.id
            }
        case .service:
            endpoint.service = w.name
            endpoint.namespace = w.namespace
        case .node:
            endpoint.node = w.name
        }
    }

    /// The process behind a packet's cgroup: named when every process of the cgroup has the same name (a container
    /// running one program), with its pid when there is exactly one. Cached like processes.
    struct CgroupProcess {
        var name: String
        var pid: Int?
    }

    private func cgroupProcess(_ id: UInt64, nowMs: Int64) -> CgroupProcess? {
        guard let cgroups, procfs != nil else { return nil }
        if let cached = cgroupProcesses.withLock({ $0[id] }), nowMs - cached.fetchedMs < Self.processCacheMs,
            nowMs >= cached.fetchedMs {
            return cached.owner
        }
        let records = cgroups.processes(ofCgroup: id).compactMap { process($0, nowMs: nowMs) }
        var owner: CgroupProcess?
        if let first = records.first, records.allSatisfy({ $0.name == first.name }) {
            owner = CgroupProcess(name: first.name, pid: records.count == 1 ? first.pid : nil)
        }
        cgroupProcesses.withLock { cache in
            if cache.count >= Self.processCacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[id] = (owner, nowMs)
        }
        return owner
    }

    private func process(_ pid: Int, nowMs: Int64) -> ProcessRecord? {
        if let known = processHistory?.process(pid: pid, atMs: nowMs) { return known }
        guard let procfs else { return nil }
        if let cached = processes.withLock({ $0[pid] }), nowMs - cached.fetchedMs < Self.processCacheMs,
            nowMs >= cached.fetchedMs {
            return cached.record
        }
        let record = procfs.process(pid)
        processes.withLock { cache in
            if cache.count >= Self.processCacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[pid] = (record, nowMs)
        }
        return record
    }
}
