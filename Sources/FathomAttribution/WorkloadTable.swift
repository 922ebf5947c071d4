import Synchronization

/// IP → workload with history: each IP keeps the intervals during which a pod, service or node owned it, so
/// traffic is named as of its timestamp and an IP reused by a new pod never renames older traffic. Memory is bounded
/// by `retentionMs` and `maximumHistoryPerIP`; strings and label sets are interned so replicas share storage.
public final class WorkloadTable: Sendable {
    /// Closed intervals older than this (relative to the newest mutation time) are forgotten by `prune`.
    public let retentionMs: Int64
    /// At most this many intervals per IP; the oldest go first.
    public let maximumHistoryPerIP: Int

    struct Interval {
        var from: Int64
        var until: Int64
        let workload: Workload
        /// The services of a pod, frozen when its interval closed (its EndpointSlice entries go with it).
        var frozenServices: [String]?
        var isOpen: Bool { until == .max }
    }

    struct State {
        var history: [IPKey: [Interval]] = [:]
        var pods: [String: (workload: Workload, ips: [IPKey])] = [:]
        var services: [String: (workload: Workload, ips: [IPKey])] = [:]
        var nodes: [String: (workload: Workload, ips: [IPKey])] = [:]
        var slices: [String: EndpointSliceRecord] = [:]
        /// "namespace/pod" → services it is an endpoint of.
        var membership: [String: [String]] = [:]
        /// "namespace/pod" → every service it was an endpoint of while it lived: EndpointSlices drop a pod when it
        /// starts terminating, often before its delete is seen, and its last traffic still belongs to the service.
        var servedServices: [String: [String]] = [:]
        /// "namespace/pod" → IPs of deleted pods whose closed intervals may still learn services: the pod and
        /// EndpointSlice streams are independent, so a slice naming the pod can be applied after the pod's delete.
        var retired: [String: [IPKey]] = [:]
        var byContainerID: [String: Workload] = [:]
        var byPodUID: [String: Workload] = [:]
        var namespaces: Set<String> = []
        var strings: Set<String> = []
        var labelSets: Set<[String: String]> = []
        var mutations = 0
        var newestMs: Int64 = 0
        var maximumHistoryPerIP: Int
    }
    let state: Mutex<State>

    public init(retentionMs: Int64 = 3_600_000, maximumHistoryPerIP: Int = 8) {
        self.retentionMs = retentionMs
        self.maximumHistoryPerIP = max(1, maximumHistoryPerIP)
        state = Mutex(State(maximumHistoryPerIP: max(1, maximumHistoryPerIP)))
    }

    // MARK: Lookups (ingest time)

    /// The owner of `ip` at `timestampMs`, or nil when nothing owned it then.
    public func lookup(ip: String, at timestampMs: Int64) -> Resolved? {
        guard let key = IPKey(ip) else { return nil }
        return lookup(key, at: timestampMs)
    }

    public func lookup(_ key: IPKey, at timestampMs: Int64) -> Resolved? {
        state.withLock { s in
            guard let intervals = s.history[key] else { return nil }
            // Newest first: traffic is mostly recent.
            for interval in intervals.reversed() where interval.from <= timestampMs {
                guard timestampMs < interval.until else { return nil }
                let services = interval.frozenServices ?? s.membership[Self.key(interval.workload)] ?? []
                return Resolved(workload: interval.workload, services: services)
            }
            return nil
        }
    }

    /// The pod running the container (bare runtime id), for traffic and processes seen through their cgroup.
    public func pod(containerID: String) -> Resolved? {
        state.withLock { s in
            guard let pod = s.byContainerID[containerID] else { return nil }
            return Resolved(workload: pod, services: s.membership[Self.key(pod)] ?? [],
                            container: pod.containers.first { $0.id == containerID })
        }
    }

    /// The pod with that UID (as cgroup paths name it), for containers the pod status does not list yet.
    public func pod(uid: String) -> Resolved? {
        state.withLock { s in
            guard let pod = s.byPodUID[uid] else { return nil }
            return Resolved(workload: pod, services: s.membership[Self.key(pod)] ?? [])
        }
    }

    // MARK: Pods

    /// Adds or updates a pod seen at `observedMs`. Its IPs open intervals from its creation time (never before the
    /// previous owner's end); IPs it no longer has are closed at `observedMs`.
    public func upsert(_ pod: PodRecord, observedMs: Int64) {
        state.withLock { s in
            let workload = Self.intern(
                Workload(kind: .pod, namespace: pod.namespace, name: pod.name, uid: pod.uid, node: pod.node,
                         labels: pod.labels, containers: pod.containers), in: &s)
            let key = Self.key(workload)
            let ips = pod.ips.compactMap(IPKey.init)
            let previous = s.pods[key]
            if let previous {
                Self.forgetIndexes(previous.workload, in: &s)
                for ip in previous.ips where !ips.contains(ip) {
                    Self.close(ip, owner: previous.workload, at: observedMs, in: &s)
                }
            }
            for ip in ips {
                Self.open(ip, workload, previous: previous?.workload, from: pod.createdMs, observedMs: observedMs, in: &s)
            }
            s.pods[key] = (workload, ips)
            s.retired[key] = nil
            for container in workload.containers { s.byContainerID[container.id] = workload }
            if !workload.uid.isEmpty { s.byPodUID[workload.uid] = workload }
            s.namespaces.insert(workload.namespace)
            Self.mutated(observedMs, in: &s)
        }
        pruneIfDue()
    }

    /// Removes a pod deleted at `observedMs`: its intervals close, keeping the services it had then.
    public func deletePod(namespace: String, name: String, observedMs: Int64) {
        state.withLock { s in
            let key = namespace + "/" + name
            guard let previous = s.pods.removeValue(forKey: key) else { return }
            Self.forgetIndexes(previous.workload, in: &s)
            for ip in previous.ips { Self.close(ip, owner: previous.workload, at: observedMs, in: &s) }
            s.servedServices[key] = nil
            if !previous.ips.isEmpty {
                if s.retired.count >= Self.retiredCapacity { s.retired.removeAll(keepingCapacity: true) }
                s.retired[key] = previous.ips
            }
            Self.mutated(observedMs, in: &s)
        }
    }

    /// Makes the pods exactly `pods` (after a list or a re-list): missing ones are deleted at `observedMs`.
    public func replacePods(_ pods: [PodRecord], observedMs: Int64) {
        let listed = Set(pods.map { $0.namespace + "/" + $0.name })
        let gone = state.withLock { s in s.pods.keys.filter { !listed.contains($0) } }
        for key in gone {
            let parts = key.split(separator: "/", maxSplits: 1)
            deletePod(namespace: String(parts[0]), name: String(parts.last ?? ""), observedMs: observedMs)
        }
        for pod in pods { upsert(pod, observedMs: observedMs) }
    }

    // MARK: Services, EndpointSlices, nodes, namespaces

    public func upsert(_ service: ServiceRecord, observedMs: Int64) {
        let workload = state.withLock { s in
            Self.intern(Workload(kind: .service, namespace: service.namespace, name: service.name), in: &s)
        }
        setAddresses(of: \.services, key: Self.key(workload), workload, service.clusterIPs.filter { $0 != "None" },
                     from: service.createdMs, observedMs: observedMs)
    }

    public func deleteService(namespace: String, name: String, observedMs: Int64) {
        setAddresses(of: \.services, key: namespace + "/" + name, nil, [], from: 0, observedMs: observedMs)
    }

    public func replaceServices(_ services: [ServiceRecord], observedMs: Int64) {
        let listed = Set(services.map { $0.namespace + "/" + $0.name })
        let gone = state.withLock { s in s.services.keys.filter { !listed.contains($0) } }
        for key in gone { setAddresses(of: \.services, key: key, nil, [], from: 0, observedMs: observedMs) }
        for service in services { upsert(service, observedMs: observedMs) }
    }

    public func upsert(_ node: NodeRecord, observedMs: Int64) {
        let workload = state.withLock { s in
            Self.intern(Workload(kind: .node, namespace: "", name: node.name, labels: node.labels), in: &s)
        }
        setAddresses(of: \.nodes, key: node.name, workload, node.addresses, from: node.createdMs, observedMs: observedMs)
    }

    public func deleteNode(name: String, observedMs: Int64) {
        setAddresses(of: \.nodes, key: name, nil, [], from: 0, observedMs: observedMs)
    }

    public func replaceNodes(_ nodes: [NodeRecord], observedMs: Int64) {
        let listed = Set(nodes.map(\.name))
        let gone = state.withLock { s in s.nodes.keys.filter { !listed.contains($0) } }
        for name in gone { deleteNode(name: name, observedMs: observedMs) }
        for node in nodes { upsert(node, observedMs: observedMs) }
    }

    public func upsert(_ slice: EndpointSliceRecord) {
        state.withLock { s in
            let key = slice.namespace + "/" + slice.name
            let before = s.slices[key]
            s.slices[key] = slice
            Self.recomputeMembership(of: Set((before?.pods ?? []) + slice.pods), namespace: slice.namespace, in: &s)
        }
    }

    public func deleteSlice(namespace: String, name: String) {
        state.withLock { s in
            guard let before = s.slices.removeValue(forKey: namespace + "/" + name) else { return }
            Self.recomputeMembership(of: Set(before.pods), namespace: namespace, in: &s)
        }
    }

    public func replaceSlices(_ slices: [EndpointSliceRecord]) {
        state.withLock { s in
            s.slices = Dictionary(slices.map { ($0.namespace + "/" + $0.name, $0) }, uniquingKeysWith: { $1 })
            s.membership = [:]
            for slice in slices {
                for pod in slice.pods { Self.addMember(slice.namespace + "/" + pod, slice.service, in: &s) }
            }
        }
    }

    public func replaceNamespaces(_ names: [String]) {
        state.withLock { $0.namespaces = Set(names) }
    }

    public func addNamespace(_ name: String) { _ = state.withLock { $0.namespaces.insert(name) } }

    // MARK: Listing (list_workloads, list_ips)

    /// Every live pod, service and node with its IPs and (for pods) services.
    public func workloads() -> [(workload: Workload, ips: [String], services: [String])] {
        state.withLock { s in
            var out: [(Workload, [String], [String])] = []
            for (key, entry) in s.pods { out.append((entry.workload, entry.ips.map(\.description), s.membership[key] ?? [])) }
            for entry in s.services.values { out.append((entry.workload, entry.ips.map(\.description), [])) }
            for entry in s.nodes.values { out.append((entry.workload, entry.ips.map(\.description), [])) }
            return out.sorted { ($0.0.kind.rawValue, $0.0.namespace, $0.0.name) < ($1.0.kind.rawValue, $1.0.namespace, $1.0.name) }
        }
    }

    public var namespaces: [String] { state.withLock { $0.namespaces.sorted() } }

    /// Every live pod, in no order (cheaper than `workloads()` for whoever needs only pods).
    public func pods() -> [Workload] {
        state.withLock { s in s.pods.values.map(\.workload) }
    }

    /// Changes with every mutation: whoever derives something from the table can tell it is still current.
    public var version: Int { state.withLock { $0.mutations } }

    /// One owner of an IP over a time interval (`untilMs` nil while it still owns it).
    public struct Ownership: Sendable {
        public let workload: Workload
        public let services: [String]
        public let fromMs: Int64
        public let untilMs: Int64?
    }

    /// Every IP the table knows with its owners, oldest first (what `list_ips` shows): the history kept for
    /// attribution, so an IP reused by another pod lists both.
    public func ipHistory() -> [(ip: String, owners: [Ownership])] {
        state.withLock { s in
            s.history.map { ip, intervals in
                (ip: ip.description, owners: intervals.map { interval in
                    Ownership(workload: interval.workload,
                              services: interval.frozenServices ?? s.membership[Self.key(interval.workload)] ?? [],
                              fromMs: interval.from, untilMs: interval.isOpen ? nil : interval.until)
                })
            }.sorted { $0.ip < $1.ip }
        }
    }

    /// Sizes, for metrics and the benchmark.
    public var counts: (pods: Int, services: Int, nodes: Int, ips: Int, intervals: Int, strings: Int) {
        state.withLock { s in
            (s.pods.count, s.services.count, s.nodes.count, s.history.count,
             s.history.values.reduce(0) { $0 + $1.count }, s.strings.count)
        }
    }

    // MARK: Pruning

    /// Forgets closed intervals that ended more than `retentionMs` before `nowMs`, and re-interns strings so names
    /// of deleted pods are released.
    public func prune(nowMs: Int64) {
        state.withLock { s in
            let horizon = nowMs - retentionMs
            for (ip, intervals) in s.history {
                let kept = intervals.filter { $0.until > horizon }
                if kept.isEmpty { s.history[ip] = nil } else if kept.count != intervals.count { s.history[ip] = kept }
            }
            var strings = Set<String>()
            var labelSets = Set<[String: String]>()
            func keep(_ w: Workload) {
                for text in [w.namespace, w.name, w.node] { strings.insert(text) }
                for (k, v) in w.labels { strings.insert(k); strings.insert(v) }
                labelSets.insert(w.labels)
            }
            for intervals in s.history.values { for i in intervals { keep(i.workload) } }
            s.retired = s.retired.filter { key, ips in
                ips.contains { ip in s.history[ip]?.contains { $0.workload.key == key } ?? false }
            }
            for entry in s.pods.values { keep(entry.workload) }
            s.strings = strings
            s.labelSets = labelSets
        }
    }

    private func pruneIfDue() {
        let due = state.withLock { s -> Int64? in s.mutations % 4096 == 0 ? s.newestMs : nil }
        if let due { prune(nowMs: due) }
    }

    // MARK: Internals

    static func key(_ w: Workload) -> String { w.key }

    private func setAddresses(
        of path: WritableKeyPath<State, [String: (workload: Workload, ips: [IPKey])]>, key: String, _ workload: Workload?,
        _ addresses: [String], from: Int64, observedMs: Int64
    ) {
        state.withLock { s in
            let ips = addresses.compactMap(IPKey.init)
            let previous = s[keyPath: path][key]
            if let previous {
                for ip in previous.ips where !ips.contains(ip) {
                    Self.close(ip, owner: previous.workload, at: observedMs, in: &s)
                }
            }
            if let workload {
                for ip in ips { Self.open(ip, workload, previous: previous?.workload, from: from, observedMs: observedMs, in: &s) }
                s[keyPath: path][key] = (workload, ips)
            } else {
                s[keyPath: path][key] = nil
            }
            Self.mutated(observedMs, in: &s)
        }
    }

    /// Opens (or refreshes) `workload`'s interval on `ip`. If the IP is still open for another owner (its delete
    /// not yet seen), that interval is closed where this one starts.
    private static func open(_ ip: IPKey, _ workload: Workload, previous: Workload?, from: Int64, observedMs: Int64,
                             in s: inout State) {
        var intervals = s.history[ip] ?? []
        if let last = intervals.last, last.isOpen {
            if last.workload === previous || sameOwner(last.workload, workload) {
                intervals[intervals.count - 1] = Interval(from: last.from, until: .max, workload: workload)
                s.history[ip] = intervals
                return
            }
            let start = max(min(from > 0 ? from : observedMs, observedMs), last.from + 1)
            intervals[intervals.count - 1].until = start
            intervals[intervals.count - 1].frozenServices = s.servedServices[key(last.workload)] ?? []
            intervals.append(Interval(from: start, until: .max, workload: workload))
        } else {
            let floor = intervals.last?.until ?? .min
            let start = max(from > 0 ? min(from, observedMs) : observedMs, floor)
            intervals.append(Interval(from: start, until: .max, workload: workload))
        }
        if intervals.count > s.maximumHistoryPerIP { intervals.removeFirst(intervals.count - s.maximumHistoryPerIP) }
        s.history[ip] = intervals
    }

    private static func close(_ ip: IPKey, owner: Workload, at observedMs: Int64, in s: inout State) {
        guard var intervals = s.history[ip], let last = intervals.last, last.isOpen, sameOwner(last.workload, owner) else { return }
        intervals[intervals.count - 1].until = max(observedMs, last.from + 1)
        if owner.kind == .pod { intervals[intervals.count - 1].frozenServices = s.servedServices[key(owner)] ?? [] }
        s.history[ip] = intervals
    }

    private static func sameOwner(_ a: Workload, _ b: Workload) -> Bool {
        a === b || (a.kind == b.kind && a.namespace == b.namespace && a.name == b.name && a.uid == b.uid)
    }

    private static func forgetIndexes(_ w: Workload, in s: inout State) {
        for container in w.containers where s.byContainerID[container.id] === w { s.byContainerID[container.id] = nil }
        if !w.uid.isEmpty, s.byPodUID[w.uid] === w { s.byPodUID[w.uid] = nil }
    }

    private static func recomputeMembership(of pods: Set<String>, namespace: String, in s: inout State) {
        for pod in pods { s.membership[namespace + "/" + pod] = nil }
        for slice in s.slices.values where slice.namespace == namespace {
            for pod in slice.pods where pods.contains(pod) { addMember(namespace + "/" + pod, slice.service, in: &s) }
        }
    }

    private static func addMember(_ podKey: String, _ service: String, in s: inout State) {
        if !(s.membership[podKey] ?? []).contains(service) { s.membership[podKey, default: []].append(service) }
        if !(s.servedServices[podKey] ?? []).contains(service) { s.servedServices[podKey, default: []].append(service) }
        guard let ips = s.retired[podKey] else { return }
        // The pod is gone and its intervals are closed: the slice still says what it served while it lived.
        for ip in ips {
            guard var intervals = s.history[ip] else { continue }
            for i in intervals.indices where !intervals[i].isOpen && intervals[i].workload.key == podKey
                && !(intervals[i].frozenServices ?? []).contains(service) {
                intervals[i].frozenServices = (intervals[i].frozenServices ?? []) + [service]
            }
            s.history[ip] = intervals
        }
    }

    /// At most this many deleted pods wait for late EndpointSlice news.
    static let retiredCapacity = 65_536

    private static func mutated(_ observedMs: Int64, in s: inout State) {
        s.mutations &+= 1
        s.newestMs = max(s.newestMs, observedMs)
    }

    /// Returns a workload whose strings and label set are shared with earlier ones of equal value.
    private static func intern(_ w: Workload, in s: inout State) -> Workload {
        func shared(_ text: String) -> String { s.strings.insert(text).memberAfterInsert }
        var labels: [String: String] = [:]
        labels.reserveCapacity(w.labels.count)
        for (k, v) in w.labels { labels[shared(k)] = shared(v) }
        return Workload(
            kind: w.kind, namespace: shared(w.namespace), name: shared(w.name), uid: w.uid, node: shared(w.node),
            labels: s.labelSets.insert(labels).memberAfterInsert,
            containers: w.containers.map { ContainerRef(name: shared($0.name), id: $0.id) })
    }
}
