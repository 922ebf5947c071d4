import ArgumentParser
import FathomAttribution
import FathomDissect
import FathomModel
import Foundation
import Synchronization

/// `fathom attribution benchmark` (hidden, for `make bench`): the cost of attribution's ingest-time steps in this
/// build, over an IP → workload table of a large cluster. The table is filled by the watcher's list from a Kubernetes
/// API (`--kubeconfig`), or with generated pods, services and EndpointSlices through the same table calls the
/// watcher's list makes. Prints one JSON object; fails when any call end is named wrongly.
struct AttributionBenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark", abstract: "Time attribution per call, per packet and per process event (make bench).",
        shouldDisplay: false)

    @OptionGroup var kubernetes: KubernetesOptions
    @Option(help: "Generated pods (without --kubeconfig).") var pods = 50_000
    @Option(help: "Generated services, each with an EndpointSlice of its pods (without --kubeconfig).") var services = 10_000
    @Option(help: "Calls to attribute, per kind of call.") var calls = 1_000_000
    @Option(help: "Packets whose local socket owner is noted.") var packets = 2_000_000
    @Option(help: "Kernel process events (exec, connect, exit) applied to the process history.") var processEvents = 300_000
    @Option(help: "Pods treated as running on this node (their sockets are local).") var localPods = 200

    func validate() throws {
        guard pods > 0, services > 0, calls > 0, packets > 0, processEvents > 0, localPods > 0 else {
            throw ValidationError("counts must be positive")
        }
    }

    func run() async throws {
        var report: [String: Double] = [:]
        let table = WorkloadTable()
        let residentBefore = Self.residentBytes()
        let fillStart = ContinuousClock.now
        if let config = try kubernetes.config() {
            try await KubeWatcher(config: config, table: table).listOnce()
        } else {
            Self.fill(table, pods: pods, services: services)
        }
        report["fill_seconds"] = Self.seconds(ContinuousClock.now - fillStart)
        report["table_resident_bytes"] = Double(Self.residentBytes() - residentBefore)
        let counts = table.counts
        report["pods"] = Double(counts.pods)
        report["services"] = Double(counts.services)
        report["ips"] = Double(counts.ips)

        let cluster = BenchCluster(table: table, localPods: localPods)
        guard !cluster.pods.isEmpty, !cluster.local.isEmpty else { throw ValidationError("the table holds no pods with an IP and a container") }
        let attributor = Attributor(table: table, processHistory: cluster.history, savedCgroupPaths: cluster.cgroupPaths)
        attributor.setClusterSynced(true)

        report["call_remote_ns"] = try Self.timeCalls(calls, attributor: attributor, owners: cluster.owners) { random in
            (cluster.remoteEnd(&random), cluster.anyEnd(&random))
        }
        report["call_local_ns"] = try Self.timeCalls(calls, attributor: attributor, owners: cluster.owners) { random in
            (cluster.localEnd(&random), cluster.anyEnd(&random))
        }
        report["packet_ns"] = Self.timePackets(packets, cluster: cluster)
        (report["process_event_ns"], report["history_spans"], report["history_sockets"]) = Self.timeProcessEvents(processEvents)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        FileHandle.standardOutput.write(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
    }

    // MARK: Calls

    /// An end of a call and the names attribution must give it.
    struct ExpectedEnd {
        var endpoint: Endpoint
        var pod: String?
        var service: String?
        var process: String?
    }

    /// Nanoseconds per call to name both ends; calls are built outside the timed part, in batches.
    static func timeCalls(_ count: Int, attributor: Attributor, owners: SocketOwners,
                          ends: (inout Xorshift) -> (ExpectedEnd, ExpectedEnd)) throws -> Double {
        var random = Xorshift(seed: 0x9E37_79B9_7F4A_7C15)
        let batchSize = 10_000
        var elapsed = Duration.zero
        var done = 0
        while done < count {
            let n = min(batchSize, count - done)
            let expected = (0..<n).map { _ in ends(&random) }
            var batch = expected.map { src, dst in
                Call(id: "", ts: BenchCluster.nowMs, node: "bench-node", captureSource: .ebpf, proto: "http",
                     src: src.endpoint, dst: dst.endpoint)
            }
            let start = ContinuousClock.now
            for i in batch.indices { attributor.attribute(&batch[i], owners: owners) }
            elapsed += ContinuousClock.now - start
            for (call, (src, dst)) in zip(batch, expected) {
                guard Self.matches(call.src, src), Self.matches(call.dst, dst) else {
                    throw ValidationError("misattributed: \(call.src) → \(call.dst), expected \(src) → \(dst)")
                }
            }
            done += n
        }
        return Self.seconds(elapsed) * 1e9 / Double(count)
    }

    static func matches(_ endpoint: Endpoint, _ expected: ExpectedEnd) -> Bool {
        endpoint.pod == expected.pod && (expected.service == nil || endpoint.service == expected.service)
            && (expected.process == nil || endpoint.process == expected.process)
    }

    // MARK: Packets

    /// Nanoseconds per packet for the agent's per-packet attribution step: decode addresses and ports, note the local
    /// socket's owner, prune (what the agent's ingest does for every packet it dissects).
    static func timePackets(_ count: Int, cluster: BenchCluster) -> Double {
        let owners = SocketOwners()
        var random = Xorshift(seed: 42)
        // Distinct packets, each a TCP segment from a local pod's port to another pod, built once.
        let frames = (0..<4096).map { _ -> (packet: [UInt8], cgroupID: UInt64) in
            let local = cluster.local[random.below(cluster.local.count)]
            let peer = cluster.pods[random.below(cluster.pods.count)]
            let port = UInt16(BenchCluster.firstPort + random.below(BenchCluster.portsPerPod))
            return (Self.tcpPacket(from: local.ip, port: port, to: peer.ip, port: 8080), local.cgroupID)
        }
        var noted = 0
        let baseNs = UInt64(BenchCluster.nowMs) * 1_000_000
        let start = ContinuousClock.now
        for n in 0..<count {
            let frame = frames[n & 4095]
            let metadata = PacketMetadata(timestampNanoseconds: baseNs + UInt64(n) * 1000, originalLength: UInt32(frame.packet.count),
                                          linkType: LinkType.rawIP, source: .ebpf, direction: .outbound, cgroupID: frame.cgroupID)
            frame.packet.withUnsafeBytes { bytes in
                guard case .success(let packet) = PacketDecoder.decode(bytes, linkType: metadata.linkType) else { return }
                let ms = Int64(metadata.timestampNanoseconds / 1_000_000)
                owners.record(ip: IPKey(v4: UInt32(truncatingIfNeeded: packet.source.low)), port: packet.sourcePort,
                              cgroupID: metadata.cgroupID, pid: nil, atMs: ms)
                owners.prune(nowMs: ms)
                noted += 1
            }
        }
        let elapsed = ContinuousClock.now - start
        precondition(noted == count, "benchmark packets must decode")
        return Self.seconds(elapsed) * 1e9 / Double(count)
    }

    /// A 40-byte IPv4 + TCP header (ACK) with no payload.
    static func tcpPacket(from source: IPKey, port sourcePort: UInt16, to destination: IPKey, port destinationPort: UInt16) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
        let ip: [UInt8] = [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]
            + be32(UInt32(truncatingIfNeeded: source.low)) + be32(UInt32(truncatingIfNeeded: destination.low))
        let tcp: [UInt8] = be16(sourcePort) + be16(destinationPort) + be32(1) + be32(1) + [0x50, 0x10] + be16(65535) + [0, 0, 0, 0]
        return ip + tcp
    }

    // MARK: Process events

    /// Nanoseconds per kernel process event applied to a history shaped as the agent's: cgroup paths resolved from a
    /// map, the executable read from `/proc` on exec (this process's own, a real readlink). Also returns the spans and
    /// socket owners the history holds at the end (its periodic prune walks them all).
    static func timeProcessEvents(_ count: Int) -> (Double, Double, Double) {
        let procfs = ProcFS()
        let ownPID = Int(getpid())
        let history = ProcessHistory(cgroupPath: { id in "/kubepods.slice/bench-\(id).scope" },
                                     executable: { _ in procfs.executable(of: ownPID) })
        let baseNs = UInt64(BenchCluster.nowMs) * 1_000_000
        // Each process execs, connects twice and exits; 20 000 pids in turn, so pids are reused as on a busy node.
        let kinds: [ProcessEvent.Kind] = [.exec, .connect, .connect, .exit]
        let events = (0..<min(count, 65_536)).map { n -> ProcessEvent in
            let process = n / kinds.count
            return ProcessEvent(kind: kinds[n % kinds.count], timestampNanoseconds: 0, startNanoseconds: 0,
                                pid: Int32(200_000 + process % 20_000), cgroupID: UInt64(5_000 + process % 500), command: "worker",
                                filename: "/usr/bin/worker", localPort: UInt16(32_768 + n % 28_000))
        }
        let start = ContinuousClock.now
        for n in 0..<count {
            var event = events[n % events.count]
            event.timestampNanoseconds = baseNs + UInt64(n) * 10_000
            event.startNanoseconds = event.timestampNanoseconds
            history.apply(event)
        }
        let elapsed = ContinuousClock.now - start
        let counts = history.counts
        return (Self.seconds(elapsed) * 1e9 / Double(count), Double(counts.spans), Double(counts.sockets))
    }

    // MARK: Helpers

    /// Generated pods (200 namespaces, 500 nodes, one container each), services with one EndpointSlice each, and the
    /// nodes, applied as a list applies them.
    static func fill(_ table: WorkloadTable, pods: Int, services: Int) {
        let observed = BenchCluster.nowMs - 60_000
        var podRecords: [PodRecord] = []
        podRecords.reserveCapacity(pods)
        for i in 0..<pods {
            let app = "app-\(i % services)"
            podRecords.append(PodRecord(
                namespace: "ns-\(i % services % 200)", name: "\(app)-7d9f8c6b5-\(String(i, radix: 36))",
                uid: UUID().uuidString.lowercased(), node: "node-\(i % 500)",
                labels: ["app": app, "pod-template-hash": "7d9f8c6b5", "team": "t\(i % 40)"],
                ips: [IPKey(v4: 0x0A00_0000 | UInt32(i + 1)).description],
                containers: [ContainerRef(name: "app", id: UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                                          + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())],
                createdMs: observed - 3_600_000))
        }
        table.replacePods(podRecords, observedMs: observed)
        table.replaceServices((0..<services).map { s in
            ServiceRecord(namespace: "ns-\(s % 200)", name: "app-\(s)", clusterIPs: [IPKey(v4: 0xAC14_0000 | UInt32(s + 1)).description],
                          createdMs: observed - 3_600_000)
        }, observedMs: observed)
        var members = [[String]](repeating: [], count: services)
        for pod in podRecords { if let s = Int(pod.labels["app"]?.dropFirst(4) ?? "") { members[s].append(pod.name) } }
        table.replaceSlices((0..<services).map { s in
            EndpointSliceRecord(namespace: "ns-\(s % 200)", name: "app-\(s)-x7k2p", service: "app-\(s)", pods: members[s])
        })
        table.replaceNodes((0..<500).map { NodeRecord(name: "node-\($0)", addresses: [IPKey(v4: 0xC0A8_0000 | UInt32($0 + 1)).description]) },
                           observedMs: observed)
    }

    /// VmRSS of this process.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return kib * 1024
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The table's pods and services as call ends, and a node's local pods: each with a cgroup, a process that opened
/// `portsPerPod` sockets (as the kernel's connect events tell the process history) and packets seen on them.
struct BenchCluster {
    struct PodEnd {
        var ip: IPKey
        var name: String
        var services: [String]
        var cgroupID: UInt64
    }

    static let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
    static let firstPort = 30_000
    static let portsPerPod = 50
    let pods: [PodEnd]
    let services: [(ip: IPKey, name: String)]
    let local: [PodEnd]
    let history: ProcessHistory
    let owners = SocketOwners()
    let cgroupPaths: [UInt64: String]

    init(table: WorkloadTable, localPods: Int) {
        var pods: [PodEnd] = []
        var services: [(IPKey, String)] = []
        var localEntries: [(PodEnd, Workload)] = []
        for entry in table.workloads() {
            guard let ip = entry.ips.first.flatMap(IPKey.init) else { continue }
            switch entry.workload.kind {
            case .pod:
                let end = PodEnd(ip: ip, name: entry.workload.name, services: entry.services, cgroupID: 0)
                pods.append(end)
                if localEntries.count < localPods, !entry.workload.uid.isEmpty, !entry.workload.containers.isEmpty {
                    localEntries.append((end, entry.workload))
                }
            case .service: services.append((ip, entry.workload.name))
            case .node: continue
            }
        }
        var paths: [UInt64: String] = [:]
        let cgroupPaths = Mutex<[UInt64: String]>([:])
        history = ProcessHistory(cgroupPath: { id in cgroupPaths.withLock { $0[id] } })
        local = localEntries.enumerated().map { index, entry in
            var end = entry.0
            end.cgroupID = UInt64(1_000_000 + index)
            let uid = entry.1.uid.replacingOccurrences(of: "-", with: "_")
            paths[end.cgroupID] = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uid).slice/"
                + "cri-containerd-\(entry.1.containers[0].id).scope"
            return end
        }
        cgroupPaths.withLock { $0 = paths }
        self.cgroupPaths = paths
        self.pods = pods
        self.services = services
        let startNs = UInt64(Self.nowMs - 60_000) * 1_000_000
        for (index, end) in local.enumerated() {
            let pid = Int32(1_000_000 + index)
            history.apply(ProcessEvent(kind: .exec, timestampNanoseconds: startNs, startNanoseconds: startNs, pid: pid,
                                       cgroupID: end.cgroupID, command: "python3", filename: "/usr/bin/python3"))
            for port in Self.firstPort..<Self.firstPort + Self.portsPerPod {
                history.apply(ProcessEvent(kind: .connect, timestampNanoseconds: startNs, startNanoseconds: startNs, pid: pid,
                                           cgroupID: end.cgroupID, command: "python3", localPort: UInt16(port)))
                owners.record(ip: end.ip, port: UInt16(port), cgroupID: end.cgroupID, pid: nil, atMs: Self.nowMs - 1000)
            }
        }
    }

    /// A pod of the cluster (not on this node) as the source of a call.
    func remoteEnd(_ random: inout Xorshift) -> AttributionBenchmarkCommand.ExpectedEnd {
        let pod = pods[random.below(pods.count)]
        return .init(endpoint: Endpoint(ip: pod.ip.description, port: 40_000 + random.below(20_000)), pod: pod.name)
    }

    /// A local pod's socket (its owner known from packets and the kernel's connect event) as the source of a call.
    func localEnd(_ random: inout Xorshift) -> AttributionBenchmarkCommand.ExpectedEnd {
        let pod = local[random.below(local.count)]
        return .init(endpoint: Endpoint(ip: pod.ip.description, port: Self.firstPort + random.below(Self.portsPerPod)),
                     pod: pod.name, process: "python3")
    }

    /// The destination of a call: a pod (half the time) or a service IP.
    func anyEnd(_ random: inout Xorshift) -> AttributionBenchmarkCommand.ExpectedEnd {
        if services.isEmpty || random.below(2) == 0 {
            let pod = pods[random.below(pods.count)]
            return .init(endpoint: Endpoint(ip: pod.ip.description, port: 8080), pod: pod.name, service: pod.services.min())
        }
        let service = services[random.below(services.count)]
        return .init(endpoint: Endpoint(ip: service.ip.description, port: 80), pod: nil, service: service.name)
    }
}

/// A small deterministic generator (xorshift64*), so every run attributes the same calls.
struct Xorshift {
    var state: UInt64

    init(seed: UInt64) { state = seed == 0 ? 1 : seed }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// Uniform enough in `0..<bound` for picking call ends.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
