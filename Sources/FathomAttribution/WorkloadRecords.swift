/// The parts of Kubernetes objects attribution keeps: nothing else of the API's JSON is stored.
public struct PodRecord: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var uid: String
    public var node: String
    public var labels: [String: String]
    /// Pod IPs (`status.podIPs`); empty while pending, for host-network pods and once the pod has terminated.
    public var ips: [String]
    /// Container name and bare container id (no `containerd://` scheme) of every started container.
    public var containers: [ContainerRef]
    /// `metadata.creationTimestamp`, milliseconds since the epoch.
    public var createdMs: Int64

    public init(namespace: String, name: String, uid: String = "", node: String = "", labels: [String: String] = [:],
                ips: [String] = [], containers: [ContainerRef] = [], createdMs: Int64 = 0) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.node = node
        self.labels = labels
        self.ips = ips
        self.containers = containers
        self.createdMs = createdMs
    }
}

/// One container of a pod: its name in the pod spec and its runtime id.
public struct ContainerRef: Sendable, Equatable, Hashable, Codable {
    public var name: String
    public var id: String
    public init(name: String, id: String) {
        self.name = name
        self.id = id
    }
}

public struct ServiceRecord: Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// `spec.clusterIPs` (headless services have none).
    public var clusterIPs: [String]
    public var createdMs: Int64
    public init(namespace: String, name: String, clusterIPs: [String], createdMs: Int64 = 0) {
        self.namespace = namespace
        self.name = name
        self.clusterIPs = clusterIPs
        self.createdMs = createdMs
    }
}

/// An EndpointSlice reduced to the pods it makes members of its service.
public struct EndpointSliceRecord: Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// The `kubernetes.io/service-name` label.
    public var service: String
    /// Names of the pods (`targetRef`) of its endpoints.
    public var pods: [String]
    public init(namespace: String, name: String, service: String, pods: [String]) {
        self.namespace = namespace
        self.name = name
        self.service = service
        self.pods = pods
    }
}

public struct NodeRecord: Sendable, Equatable {
    public var name: String
    public var addresses: [String]
    public var labels: [String: String]
    public var createdMs: Int64
    public init(name: String, addresses: [String], labels: [String: String] = [:], createdMs: Int64 = 0) {
        self.name = name
        self.addresses = addresses
        self.labels = labels
        self.createdMs = createdMs
    }
}

/// What owns an IP for a while: a pod, a service's cluster IP, or a node.
public enum WorkloadKind: String, Sendable, Codable, CaseIterable {
    case pod, service, node
}

/// One owner of IPs as the table stores it: immutable and shared by every interval that names it.
public final class Workload: Sendable {
    public let kind: WorkloadKind
    public let namespace: String
    public let name: String
    public let uid: String
    public let node: String
    public let labels: [String: String]
    public let containers: [ContainerRef]
    /// "namespace/name", built once: lookups key membership by it on every call.
    let key: String

    init(kind: WorkloadKind, namespace: String, name: String, uid: String = "", node: String = "",
         labels: [String: String] = [:], containers: [ContainerRef] = []) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.node = node
        self.labels = labels
        self.containers = containers
        key = namespace + "/" + name
    }
}

/// The owner of an IP at one instant, with the services its pod belonged to then.
public struct Resolved: Sendable {
    public let workload: Workload
    public let services: [String]
    /// The container named in `containers` by the id the caller looked up, when there was one.
    public var container: ContainerRef?
}
