extension WorkloadTable {
    /// The part of the table a snapshot keeps: every owner of an IP during its window, with the services it had
    /// then, and the pods running at its end (container ids and pod UIDs name local traffic without an IP).
    public struct Saved: Sendable, Codable, Equatable {
        public struct Owner: Sendable, Codable, Equatable {
            public var kind: WorkloadKind
            public var namespace: String
            public var name: String
            public var uid: String
            public var node: String
            public var labels: [String: String]
            public var containers: [ContainerRef]
            /// For pods: the services it is (or was, when it ended) an endpoint of.
            public var services: [String]
        }

        public struct Interval: Sendable, Codable, Equatable {
            public var ip: String
            /// Index into `owners`.
            public var owner: Int
            public var services: [String]
            public var fromMs: Int64
            /// nil while it still owned the IP.
            public var untilMs: Int64?
        }

        public var owners: [Owner]
        public var intervals: [Interval]
    }

    /// What names traffic of `fromMs...untilMs`.
    public func saved(fromMs: Int64, untilMs: Int64) -> Saved {
        state.withLock { s in
            var owners: [Saved.Owner] = []
            var index: [ObjectIdentifier: Int] = [:]
            func ownerIndex(_ w: Workload) -> Int {
                if let known = index[ObjectIdentifier(w)] { return known }
                owners.append(Saved.Owner(kind: w.kind, namespace: w.namespace, name: w.name, uid: w.uid, node: w.node,
                                          labels: w.labels, containers: w.containers,
                                          services: s.membership[w.key] ?? s.servedServices[w.key] ?? []))
                index[ObjectIdentifier(w)] = owners.count - 1
                return owners.count - 1
            }
            for entry in s.pods.values { _ = ownerIndex(entry.workload) }
            var intervals: [Saved.Interval] = []
            for (ip, history) in s.history {
                for interval in history where interval.from <= untilMs && interval.until >= fromMs {
                    intervals.append(Saved.Interval(
                        ip: ip.description, owner: ownerIndex(interval.workload),
                        services: interval.frozenServices ?? s.membership[interval.workload.key] ?? [],
                        fromMs: interval.from, untilMs: interval.isOpen ? nil : interval.until))
                }
            }
            intervals.sort { ($0.ip, $0.fromMs) < ($1.ip, $1.fromMs) }
            return Saved(owners: owners, intervals: intervals)
        }
    }

    /// A table holding what a snapshot saved. Services are frozen as saved: the table learns nothing more.
    public convenience init(restoring saved: Saved) {
        self.init(retentionMs: .max, maximumHistoryPerIP: max(1, saved.intervals.count))
        let workloads = saved.owners.map {
            Workload(kind: $0.kind, namespace: $0.namespace, name: $0.name, uid: $0.uid, node: $0.node, labels: $0.labels,
                     containers: $0.containers)
        }
        state.withLock { s in
            for (owner, workload) in zip(saved.owners, workloads) where owner.kind == .pod {
                for container in workload.containers { s.byContainerID[container.id] = workload }
                if !workload.uid.isEmpty { s.byPodUID[workload.uid] = workload }
                s.membership[workload.key] = owner.services
                s.namespaces.insert(workload.namespace)
            }
            for interval in saved.intervals where workloads.indices.contains(interval.owner) {
                guard let ip = IPKey(interval.ip) else { continue }
                s.history[ip, default: []].append(Interval(
                    from: interval.fromMs, until: interval.untilMs ?? .max, workload: workloads[interval.owner],
                    frozenServices: interval.services))
            }
        }
    }
}
