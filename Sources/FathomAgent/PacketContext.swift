import FathomAttribution
import FathomModel

/// The context the agent itself knows for an exported packet: capture source, direction, process id, and the
/// cgroup with the container and pod uid its path names: from the cgroup table saved when the snapshot was taken,
/// else from the live hierarchy (a cgroup gone by then shows by id only). Pod and namespace names need the
/// workload table: a provider wired to it (and to a copy of it saved with the snapshot) replaces this one.
struct CgroupPacketContext: PacketContextProvider {
    /// cgroup id → path as saved with the snapshot.
    let recorded: [UInt64: String]
    let cgroups: CgroupResolver

    func comment(for m: PacketMetadata) -> String {
        var parts = ["fathom source=\(m.source.rawValue)"]
        switch m.direction {
        case .inbound: parts.append("direction=inbound")
        case .outbound: parts.append("direction=outbound")
        default: break
        }
        if m.processID != 0 { parts.append("pid=\(m.processID)") }
        if m.cgroupID != 0 {
            parts.append("cgroup_id=\(m.cgroupID)")
            if let path = recorded[m.cgroupID] ?? cgroups.path(ofCgroup: m.cgroupID) {
                parts.append("cgroup=\(path)")
                let identity = CgroupIdentity(cgroupPath: path)
                if let container = identity.containerID { parts.append("container_id=\(container)") }
                if let runtime = identity.runtime { parts.append("runtime=\(runtime.rawValue)") }
                if let pod = identity.podUID { parts.append("pod_uid=\(pod)") }
            }
        }
        return parts.joined(separator: " ")
    }
}
