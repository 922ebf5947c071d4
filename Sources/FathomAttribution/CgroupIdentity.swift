/// The container runtime that created a cgroup, as told by its path.
public enum ContainerRuntime: String, Sendable, Codable {
    case containerd, crio, docker, podman
    /// A bare 64-hex directory (cgroupfs driver) under a parent that does not name its runtime.
    case unknown
}

/// Kubernetes QoS class of a pod, as the kubelet encodes it in the pod's cgroup path.
public enum PodQOSClass: String, Sendable, Codable {
    case guaranteed, burstable, besteffort
}

/// What a cgroup path says about its owner: container id and runtime, pod UID and QoS class.
public struct CgroupIdentity: Sendable, Equatable {
    /// 64 lowercase hex characters, as in `status.containerStatuses[].containerID` after the `runtime://` prefix.
    public var containerID: String?
    public var runtime: ContainerRuntime?
    /// The pod's UID with dashes (`_` of systemd slice names turned back into `-`); 32 hex for static pods.
    public var podUID: String?
    public var qosClass: PodQOSClass?

    public init(containerID: String? = nil, runtime: ContainerRuntime? = nil, podUID: String? = nil, qosClass: PodQOSClass? = nil) {
        self.containerID = containerID
        self.runtime = runtime
        self.podUID = podUID
        self.qosClass = qosClass
    }

    /// Nothing container- or pod-like was found in the path.
    public var isEmpty: Bool { containerID == nil && podUID == nil }
}

extension CgroupIdentity {
    /// Parses a cgroup path (v1 or v2, systemd or cgroupfs driver, with or without the mount prefix). The deepest
    /// container component wins, so nested layouts (kind, podman's `…scope/container`) name the innermost container.
    public init(cgroupPath path: String) {
        self.init(cgroupPath: path[...])
    }

    public init(cgroupPath path: Substring) {
        self.init()
        var parent: Substring = ""
        for component in path.split(separator: "/") {
            if let found = Self.container(in: component, parent: parent) {
                containerID = found.id
                runtime = found.runtime
            } else if let pod = Self.pod(in: component) {
                podUID = pod.uid
                qosClass = pod.qos ?? qosClass
            } else if let qos = Self.qosOnly(component) {
                qosClass = qos
            }
            parent = component
        }
    }

    /// Runtime prefixes of systemd scopes (`<prefix><id>.scope`) and of CRI-O's cgroupfs layout (`crio-<id>`).
    /// Longer prefixes first: a conmon scope belongs to the container it monitors.
    static let runtimePrefixes: [(prefix: Substring, runtime: ContainerRuntime)] = [
        ("cri-containerd-", .containerd), ("crio-conmon-", .crio), ("crio-", .crio), ("docker-", .docker),
        ("libpod-conmon-", .podman), ("libpod-", .podman), ("nerdctl-", .containerd),
    ]

    static func container(in component: Substring, parent: Substring) -> (id: String, runtime: ContainerRuntime)? {
        var name = component
        if name.hasSuffix(".scope") { name = name.dropLast(6) }
        for (prefix, runtime) in runtimePrefixes where name.hasPrefix(prefix) {
            let id = name.dropFirst(prefix.count)
            return isHex(id, count: 64) ? (id.lowercased(), runtime) : nil
        }
        guard isHex(name, count: 64) else { return nil }
        switch parent {
        case "docker": return (name.lowercased(), .docker)
        case "libpod_parent": return (name.lowercased(), .podman)
        case "k8s.io", "moby": return (name.lowercased(), parent == "moby" ? .docker : .containerd)
        default: return (name.lowercased(), .unknown)
        }
    }

    /// `kubepods-burstable-pod<uid>.slice`, `kubepods-pod<uid>.slice`, `kubelet-kubepods-…-pod<uid>.slice` (systemd)
    /// or `pod<uid>` (cgroupfs).
    static func pod(in component: Substring) -> (uid: String, qos: PodQOSClass?)? {
        var name = component
        var qos: PodQOSClass?
        if name.hasSuffix(".slice") {
            name = name.dropLast(6)
            guard let range = name.range(of: "kubepods-") else { return nil }
            let rest = name[range.upperBound...]
            if rest.hasPrefix("burstable-") { qos = .burstable } else if rest.hasPrefix("besteffort-") { qos = .besteffort }
            guard let podRange = rest.range(of: "pod") else { return nil }
            if qos == nil, podRange.lowerBound == rest.startIndex { qos = .guaranteed }
            name = rest[podRange.upperBound...]
        } else {
            guard name.hasPrefix("pod") else { return nil }
            name = name.dropFirst(3)
        }
        guard let uid = podUID(name) else { return nil }
        return (uid, qos)
    }

    /// The QoS level of the cgroupfs layout (`kubepods/burstable/…`) or the systemd one (`kubepods-besteffort.slice`).
    static func qosOnly(_ component: Substring) -> PodQOSClass? {
        switch component {
        case "burstable", "kubepods-burstable.slice", "kubelet-kubepods-burstable.slice": return .burstable
        case "besteffort", "kubepods-besteffort.slice", "kubelet-kubepods-besteffort.slice": return .besteffort
        default: return nil
        }
    }

    /// A UID in 8-4-4-4-12 form (dashes or systemd's underscores) or 32 hex (static pods' config hash).
    static func podUID(_ text: Substring) -> String? {
        let bytes = Array(text.utf8)
        if bytes.count == 32 { return isHex(text, count: 32) ? text.lowercased() : nil }
        guard bytes.count == 36 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard b == UInt8(ascii: "-") || b == UInt8(ascii: "_") else { return nil }
                out.append(UInt8(ascii: "-"))
            } else {
                guard let lower = lowerHex(b) else { return nil }
                out.append(lower)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isHex(_ text: Substring, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { lowerHex($0) != nil }
    }

    static func lowerHex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): return b
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b + 32
        default: return nil
        }
    }
}

extension CgroupIdentity {
    /// The identity in a `/proc/<pid>/cgroup` file: the v2 line (`0::/path`) when it names a container or pod,
    /// else the first v1 line that does (hybrid and v1-only nodes).
    public init(procCgroupFile text: String) {
        var fallback = CgroupIdentity()
        for line in text.split(separator: "\n") {
            // "hierarchy-id:controllers:path"; the path may itself hold ':'.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let identity = CgroupIdentity(cgroupPath: parts[2])
            if parts[0] == "0", !identity.isEmpty {
                self = identity
                return
            }
            if fallback.isEmpty { fallback = identity }
        }
        self = fallback
    }

    /// The container id of a pod status (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`) without its scheme.
    public static func bareContainerID(_ statusID: String) -> Substring {
        guard let range = statusID.range(of: "://") else { return statusID[...] }
        return statusID[range.upperBound...]
    }
}
