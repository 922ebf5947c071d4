import ArgumentParser
import FathomAttribution
import FathomCapture
import FathomModel
import Foundation

/// `fathom attribution …`: who is behind an IP, a pid or a cgroup, as the agent would name it.
struct AttributionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribution", abstract: "Name endpoints and list workloads the way the agent attributes traffic.",
        subcommands: [ResolveCommand.self, WorkloadsCommand.self, AttributionBenchmarkCommand.self])
}

/// Where the Kubernetes API is: a kubeconfig, the in-cluster service account, or none.
struct KubernetesOptions: ParsableArguments {
    @Option(help: "Kubeconfig file (server, CA, token or client certificate). Default: in-cluster service account when running in a pod.")
    var kubeconfig: String?
    @Option(help: "Context of the kubeconfig (default: its current-context).") var context: String?

    /// The configuration to use, or nil when no cluster is reachable by configuration.
    func config() throws -> KubeConfig? {
        if let kubeconfig {
            do {
                return try KubeConfig.load(path: kubeconfig, context: context)
            } catch {
                throw ValidationError("\(kubeconfig): \(error)")
            }
        }
        return try? KubeConfig.inCluster()
    }
}

extension AttributionCommand {
    struct ResolveCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resolve", abstract: "Attribute endpoints; prints one JSON endpoint a line.")

        @OptionGroup var kubernetes: KubernetesOptions
        @Argument(help: "Endpoints as IP or IP@MILLISECONDS (the traffic's time; default now).") var endpoints: [String]
        @Option(help: "Local process id of the endpoints (read from /proc).") var pid: Int?
        @Option(help: "cgroup v2 id of the endpoints.") var cgroupID: UInt64?
        @Option(help: "proc filesystem to read processes from.") var procRoot = "/proc"
        @Option(help: "Follow the watch for this many seconds after listing, before resolving.") var watchSeconds: Double = 0
        @Option(help: "Follow the watch until this many pod/service/EndpointSlice events were applied (at most 30 s).")
        var watchEvents = 0
        @Flag(help: "Print the watch's event counts as JSON on stderr.") var stats = false

        func run() async throws {
            let mount = CgroupV2.mountPoint()
            let attributor = Attributor(cgroups: mount.map { CgroupResolver(mountPoint: $0) }, procfs: ProcFS(root: procRoot))
            let parsed = try endpoints.map(Self.parse)
            if let config = try kubernetes.config() {
                let watcher = try KubeWatcher(config: config, table: attributor.table, attributor: attributor)
                if watchSeconds > 0 || watchEvents > 0 {
                    let task = Task { await watcher.run() }
                    // Bounded: at most 30 s for the first list, then the requested watch time.
                    for _ in 0..<300 where !attributor.isClusterSynced { try await Task.sleep(for: .milliseconds(100)) }
                    guard attributor.isClusterSynced else {
                        task.cancel()
                        throw ValidationError("the Kubernetes API did not answer the lists within 30 s")
                    }
                    try await Task.sleep(for: .milliseconds(Int(watchSeconds * 1000)))
                    for _ in 0..<300 where Self.applied(watcher.eventCounts) < watchEvents {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    task.cancel()
                } else {
                    try await watcher.listOnce()
                }
                if stats {
                    let counts = try JSONEncoder().encode(watcher.eventCounts)
                    FileHandle.standardError.write(String(decoding: counts, as: UTF8.self) + "\n")
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for (ip, timestamp) in parsed {
                let endpoint = attributor.endpoint(ip: ip, port: 0, timestampMs: timestamp, cgroupID: cgroupID, pid: pid)
                FileHandle.standardOutput.write(String(decoding: try encoder.encode(endpoint), as: UTF8.self) + "\n")
            }
        }

        /// Watch events that changed the table (list and error counts left out).
        static func applied(_ counts: [String: Int]) -> Int {
            counts.filter { $0.key.hasSuffix("/ADDED") || $0.key.hasSuffix("/MODIFIED") || $0.key.hasSuffix("/DELETED") }
                .values.reduce(0, +)
        }

        static func parse(_ text: String) throws -> (String, Int64) {
            let parts = text.split(separator: "@", maxSplits: 1)
            guard let ip = parts.first, IPKey(String(ip)) != nil else { throw ValidationError("not an IP address: \(text)") }
            guard parts.count == 2 else { return (String(ip), Int64(Date().timeIntervalSince1970 * 1000)) }
            guard let ms = Int64(parts[1]) else { throw ValidationError("not milliseconds since the epoch: \(parts[1])") }
            return (String(ip), ms)
        }
    }

    struct WorkloadsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "workloads", abstract: "List the cluster's pods, services and nodes with their IPs, as JSON.")

        @OptionGroup var kubernetes: KubernetesOptions

        func run() async throws {
            guard let config = try kubernetes.config() else {
                throw ValidationError("no Kubernetes API: pass --kubeconfig or run in a pod with a service account")
            }
            let table = WorkloadTable()
            try await KubeWatcher(config: config, table: table).listOnce()
            let listing = WorkloadListing(
                namespaces: table.namespaces,
                workloads: table.workloads().map { entry in
                    WorkloadListing.Item(
                        kind: entry.workload.kind.rawValue, namespace: entry.workload.namespace, name: entry.workload.name,
                        node: entry.workload.node, ips: entry.ips, services: entry.services, labels: entry.workload.labels,
                        containers: entry.workload.containers)
                })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(String(decoding: try encoder.encode(listing), as: UTF8.self) + "\n")
        }
    }
}

/// The JSON of `fathom attribution workloads`.
struct WorkloadListing: Encodable {
    struct Item: Encodable {
        var kind, namespace, name, node: String
        var ips, services: [String]
        var labels: [String: String]
        var containers: [ContainerRef]
    }
    var namespaces: [String]
    var workloads: [Item]
}
