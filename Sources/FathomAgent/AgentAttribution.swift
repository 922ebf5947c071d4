import FathomAttribution
import FathomCapture
import FathomDissect
import FathomModel
import Foundation
import Logging
import Synchronization

/// Attribution as the agent runs it: the Kubernetes watch feeding the IP → workload table, the names given to each
/// call as it is stored (`IngestAttribution`, on the dissection thread), and pod targeting written into the capture's
/// kernel maps as pods come and go.
final class AgentAttribution: MetricsSource, Sendable {
    let attributor: Attributor
    let nodeName: String
    let rules: TargetRules
    /// nil when no Kubernetes API is configured.
    private let watcher: KubeWatcher?
    /// Exec, exit, connect and listen events from the kernel; nil when it cannot load (then `/proc` alone names
    /// processes, and only while they run).
    private let processTracer: ProcessTracer?
    /// How processes are learned: "ebpf", or why not.
    let processEvents: String
    private let logger: Logger
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let report = Mutex(TargetsReport.empty)
    /// cgroup ids this agent put into the targeting map, and how.
    private let applied = Mutex<[UInt64: TargetKind]>([:])
    private let targetingErrors = Atomic<UInt64>(0)
    private let captureSource = Mutex("")
    /// What the last complete targeting plan was made from.
    private struct PlanInputs: Equatable {
        var tableVersion: Int
        var synced: Bool
    }
    private let lastPlan = Mutex<PlanInputs?>(nil)
    /// How often pod targeting is recomputed.
    static let targetingInterval: Duration = .seconds(1)

    init(configuration: AgentConfiguration, logger: Logger) throws {
        let options = configuration.attribution
        let cgroups = CgroupV2.mountPoint().map { CgroupResolver(mountPoint: $0) }
        let procfs = ProcFS(root: options.procRoot)
        let history = ProcessHistory(cgroupPath: { id in cgroups?.path(ofCgroup: id) }, executable: { procfs.executable(of: $0) })
        attributor = Attributor(cgroups: cgroups, procfs: procfs, processHistory: history)
        do {
            let tracer = try ProcessTracer(logger: logger)
            try tracer.start { history.apply($0) }
            // Seeded after the tracer started, so no process falls between the two.
            history.seed(procfs.pids().compactMap { procfs.process($0) })
            (processTracer, processEvents) = (tracer, "ebpf")
        } catch {
            let reason = Agent.describe(error)
            logger.warning("process events unavailable, processes are named from /proc while they run: \(reason)")
            (processTracer, processEvents) = (nil, "/proc only: \(reason)")
        }
        nodeName = configuration.nodeName
        rules = options.targets
        self.logger = logger
        if let kube = try options.kubeConfig() {
            watcher = try KubeWatcher(config: kube, table: attributor.table, attributor: attributor, logger: logger)
            logger.info("attribution: watching the Kubernetes API at \(kube.server.absoluteString) as node \(configuration.nodeName)")
        } else {
            watcher = nil
            logger.info("attribution: no Kubernetes API configured (--kubeconfig, or in a pod): local and DNS names only")
            if !options.targets.isEmpty { logger.warning("pod targeting rules need the Kubernetes API: they are not applied") }
        }
    }

    /// The per-call step of live dissection.
    func makeIngest() -> IngestAttribution { IngestAttribution(attributor: attributor) }

    /// Starts the watch and, when packet capture is eBPF, the targeting loop that keeps its cgroup maps in step.
    func start(capture: PacketCapture) {
        captureSource.withLock { $0 = capture.source.rawValue }
        guard let watcher else { return }
        var started = [Task { await watcher.run() }]
        let bpf = capture as? BPFCapture
        if rules.hasIncludes, let bpf { apply([0: .include], to: bpf) }
        started.append(Task { [self] in
            while !Task.isCancelled {
                updateTargets(capture: capture, bpf: bpf)
                try? await Task.sleep(for: Self.targetingInterval)
            }
        })
        tasks.withLock { $0 = started }
    }

    func stop() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        processTracer?.stop()
    }

    /// Decides every pod of this node and writes the changes into the kernel's targeting map. Skipped while the
    /// table has not changed since a plan that found every local pod's cgroup: with tens of thousands of pods the
    /// plan is the agent's main idle cost.
    func updateTargets(capture: PacketCapture, bpf: BPFCapture?) {
        let current = PlanInputs(tableVersion: attributor.table.version, synced: attributor.isClusterSynced)
        guard lastPlan.withLock({ $0 }) != current else { return }
        let cgroups = attributor.cgroups
        let all = attributor.table.pods()
        var podCgroups = cgroups?.podCgroupIDs(refresh: false) ?? [:]
        let local = all.filter { $0.node == nodeName || podCgroups[$0.uid] != nil }
            .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        if local.contains(where: { podCgroups[$0.uid] == nil }) {
            podCgroups = cgroups?.podCgroupIDs(refresh: true) ?? podCgroups
        }
        // A local pod whose cgroup is not there yet (its containers are starting) is planned again next time.
        lastPlan.withLock { $0 = local.contains { podCgroups[$0.uid] == nil } ? nil : current }
        let plan = rules.plan(pods: local, podCgroups: podCgroups)
        if let bpf { apply(plan.cgroups, to: bpf) }
        let enforced = bpf != nil || rules.isEmpty
        report.withLock {
            $0 = TargetsReport(
                node: nodeName, cluster: attributor.isClusterSynced ? "synced" : "syncing",
                captureSource: capture.source.rawValue, enforcedInKernel: bpf != nil && !rules.isEmpty,
                note: enforced ? nil : "libpcap capture cannot tell pods apart: every pod's traffic is recorded whatever the rules say",
                captured: plan.pods.filter(\.captured).count, excluded: plan.pods.filter { !$0.captured }.count,
                podsOnOtherNodes: all.count - local.count,
                pods: enforced ? plan.pods : plan.pods.map { var p = $0; p.captured = true; return p })
        }
    }

    /// Writes the difference between what is in the map and `wanted`.
    private func apply(_ wanted: [UInt64: TargetKind], to bpf: BPFCapture) {
        let current = applied.withLock { $0 }
        for (id, kind) in wanted where current[id] != kind {
            do {
                try bpf.setTarget(cgroupID: id, kind == .include ? .include : .exclude)
            } catch {
                targetingErrors.add(1, ordering: .relaxed)
                logger.warning("cannot \(kind.rawValue) cgroup \(id): \(error)")
                continue
            }
            applied.withLock { $0[id] = kind }
        }
        for id in current.keys where wanted[id] == nil {
            try? bpf.setTarget(cgroupID: id, nil)
            applied.withLock { $0[id] = nil }
        }
    }

    /// `GET /targets`: what is captured and what is not, and why.
    func targets() -> TargetsReport {
        guard watcher != nil else {
            return TargetsReport(
                node: nodeName, cluster: "none", captureSource: captureSource.withLock { $0 }, enforcedInKernel: false,
                note: "no Kubernetes API configured: pods are unknown, and every pod's traffic on this node is recorded",
                captured: 0, excluded: 0, podsOnOtherNodes: 0, pods: [])
        }
        return report.withLock { $0 }
    }

    func metrics() -> [Metric] {
        let counts = attributor.table.counts
        var metrics = [
            Metric("fathom_attribution_cluster_synced", .gauge, "1 once the Kubernetes lists were read.",
                   value: attributor.isClusterSynced ? 1 : 0),
            Metric("fathom_attribution_pods", .gauge, "Pods in the IP → workload table.", value: Double(counts.pods)),
            Metric("fathom_attribution_ip_intervals", .gauge, "IP ownership intervals kept (history included).",
                   value: Double(counts.intervals)),
            Metric("fathom_attribution_dns_names", .gauge, "IPs named from DNS answers.", value: Double(attributor.dnsNames.count)),
            Metric("fathom_targeting_cgroups", .gauge, "cgroups in the capture's targeting map set by pod rules.",
                   value: Double(applied.withLock { $0.count })),
            Metric("fathom_targeting_errors_total", .counter, "Failed updates of the targeting map.",
                   value: Double(targetingErrors.load(ordering: .relaxed))),
        ]
        if let history = attributor.processHistory {
            let counts = history.counts
            metrics.append(Metric("fathom_attribution_processes", .gauge, "Processes in the process history (ended ones included).",
                                  value: Double(counts.processes)))
            metrics.append(Metric("fathom_attribution_socket_owners", .gauge, "TCP sockets whose owning process is known.",
                                  value: Double(counts.sockets)))
            metrics.append(Metric("fathom_attribution_processes_evicted_total", .counter,
                                  "Ended processes forgotten before their retention, to keep the history within its capacity.",
                                  value: Double(counts.evicted)))
        }
        metrics += processTracer?.metrics() ?? []
        if let watcher {
            metrics.append(Metric("fathom_kubernetes_events_total", .counter, "Watch events and lists applied, by resource/type.",
                                  watcher.eventCounts.sorted { $0.key < $1.key }.map { (labels: [("event", $0.key)], value: Double($0.value)) }))
        }
        return metrics
    }
}

/// The body of `GET /targets`.
struct TargetsReport: Codable, Sendable {
    var node: String
    /// "synced", "syncing" (the first lists are not read yet) or "none" (no API configured).
    var cluster: String
    var captureSource: String
    /// Targeting rules are enforced by the eBPF programs' cgroup maps.
    var enforcedInKernel: Bool
    var note: String?
    var captured: Int
    var excluded: Int
    /// Pods of the cluster running elsewhere: this agent records none of their sockets.
    var podsOnOtherNodes: Int
    var pods: [PodTarget]

    static let empty = TargetsReport(node: "", cluster: "syncing", captureSource: "", enforcedInKernel: false, note: nil,
                                     captured: 0, excluded: 0, podsOnOtherNodes: 0, pods: [])
}

/// Names the ends of each call at ingest time, on the dissection thread: packets tell which local socket (cgroup
/// id, pid) owns each address, DNS answers name IPs, and the attributor does the rest.
final class IngestAttribution: DecodedPacketObserver {
    let attributor: Attributor
    let owners = SocketOwners()
    /// Time of the newest packet seen, ms: DNS names are learned as of it.
    private var newestMs: Int64 = 0

    init(attributor: Attributor) {
        self.attributor = attributor
    }

    /// Notes the local end of a packet the dissection engine decoded (its source when sent, its destination when
    /// received) and its owner.
    func observe(_ metadata: PacketMetadata, _ packet: DecodedPacket) {
        let ms = Int64(metadata.timestampNanoseconds / 1_000_000)
        if ms > newestMs { newestMs = ms }
        guard metadata.cgroupID != 0 || metadata.processID != 0, metadata.direction != .unknown else { return }
        let outbound = metadata.direction == .outbound
        let ip = outbound ? packet.source : packet.destination
        let key = ip.isIPv6 ? IPKey(high: ip.high, low: ip.low) : IPKey(v4: UInt32(truncatingIfNeeded: ip.low))
        owners.record(ip: key, port: outbound ? packet.sourcePort : packet.destinationPort, cgroupID: metadata.cgroupID,
                      pid: metadata.processID == 0 ? nil : Int(metadata.processID), atMs: ms)
        owners.prune(nowMs: ms)
    }

    /// Both ends of each connection's latest call, as attributed then. The connection's next calls within
    /// `reuseMilliseconds` (keep-alive traffic) take them as they are instead of looking both ends up again, which cost
    /// a tenth of the agent's CPU at 40 K calls/s; what changes meanwhile (a pod starting, a DNS answer) shows from the
    /// first call after that.
    private var recentEnds: [String: (ms: Int64, src: Endpoint, dst: Endpoint)] = [:]
    static let reuseMilliseconds: Int64 = 1_000
    static let recentEndsLimit = 10_000

    func attribute(_ call: inout Call) {
        let connection = call.connectionID
        if !connection.isEmpty, let recent = recentEnds[connection], call.ts >= recent.ms,
            call.ts - recent.ms < Self.reuseMilliseconds, recent.src.ip == call.src.ip, recent.src.port == call.src.port,
            recent.dst.ip == call.dst.ip, recent.dst.port == call.dst.port
        {
            call.src = recent.src
            call.dst = recent.dst
            return
        }
        attributor.attribute(&call, owners: owners)
        guard !connection.isEmpty else { return }
        if recentEnds.count >= Self.recentEndsLimit { recentEnds.removeAll(keepingCapacity: true) }
        recentEnds[connection] = (call.ts, call.src, call.dst)
    }

    func attribute(_ flow: inout Flow) {
        attributor.attribute(&flow, owners: owners)
    }

    func learned(name: String, for ip: String) {
        attributor.dnsNames.learn(name: name, address: ip, ttl: 0, atMs: newestMs)
    }
}
