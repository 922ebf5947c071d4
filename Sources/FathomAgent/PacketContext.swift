import FathomAttribution
import FathomModel

/// The context of an exported packet, named by an attributor: the one a snapshot saved (pods, processes and cgroups
/// as they were in its window), else the live one. Capture source, direction, process (by pid for TLS plaintext,
/// else by the socket at the packet's local port), cgroup, container and pod.
struct AttributedPacketContext: PacketContextProvider {
    let attributor: Attributor

    func comment(for m: PacketMetadata, localPort: UInt16?) -> String {
        var parts = ["fathom source=\(m.source.rawValue)"]
        switch m.direction {
        case .inbound: parts.append("direction=inbound")
        case .outbound: parts.append("direction=outbound")
        default: break
        }
        guard m.cgroupID != 0 || m.processID != 0 else { return parts.joined(separator: " ") }
        // No IP: the local evidence (cgroup, pid, socket) names the packet's own end, not whoever owned its address.
        var local = Endpoint(ip: "", port: Int(localPort ?? 0))
        attributor.attribute(&local, timestampMs: Int64(m.timestampNanoseconds / 1_000_000),
                             cgroupID: m.cgroupID == 0 ? nil : m.cgroupID, pid: m.processID == 0 ? nil : Int(m.processID))
        if let pid = local.pid { parts.append("pid=\(pid)") }
        if let process = local.process { parts.append("process=\(Self.quoted(process))") }
        if m.cgroupID != 0 {
            parts.append("cgroup_id=\(m.cgroupID)")
            if let path = attributor.cgroupPath(ofCgroup: m.cgroupID) {
                parts.append("cgroup=\(Self.quoted(path))")
                let identity = CgroupIdentity(cgroupPath: path)
                if let runtime = identity.runtime { parts.append("runtime=\(runtime.rawValue)") }
                if let pod = identity.podUID { parts.append("pod_uid=\(pod)") }
            }
        }
        if let container = local.containerID { parts.append("container_id=\(container)") }
        if let pod = local.pod { parts.append("pod=\(pod)") }
        if let namespace = local.namespace { parts.append("namespace=\(namespace)") }
        if let container = local.container { parts.append("container=\(container)") }
        return parts.joined(separator: " ")
    }

    /// Values with spaces (process names, odd cgroup paths) are quoted so the comment stays `key=value` pairs.
    static func quoted(_ value: String) -> String {
        value.contains(where: { $0 == " " || $0 == "\"" })
            ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
    }
}
