import FathomAttribution
import FathomModel
import XCTest
@testable import FathomAgent

/// Export comments name the pod, container and process of each packet from what the snapshot saved, after the
/// pod is deleted and the process has exited.
final class PacketContextTests: XCTestCase {
    let container = String(repeating: "d", count: 64)

    func savedAttribution() -> SavedAttribution {
        let live = Attributor()
        live.setClusterSynced(true)
        live.table.upsert(PodRecord(namespace: "shop", name: "frontend-1", uid: "8f2a6c1e-1b7d-4c1e-9a53-2b7c0f1e4d21", node: "w1", ips: ["10.1.0.7"],
                                    containers: [ContainerRef(name: "web", id: container)], createdMs: 1_000), observedMs: 1_000)
        let history = ProcessHistory()
        history.apply(ProcessEvent(kind: .exec, timestampNanoseconds: 2_000_000_000, startNanoseconds: 2_000_000_000, pid: 321,
                                   cgroupID: 55, command: "curl", filename: "/usr/bin/curl"))
        history.apply(ProcessEvent(kind: .connect, timestampNanoseconds: 2_100_000_000, startNanoseconds: 2_000_000_000, pid: 321,
                                   cgroupID: 55, command: "curl", localIP: "10.1.0.7", localPort: 43_210))
        history.apply(ProcessEvent(kind: .exit, timestampNanoseconds: 3_000_000_000, startNanoseconds: 2_000_000_000, pid: 321,
                                   cgroupID: 55, command: "curl"))
        var saved = Attributor(processHistory: history).saved(fromMs: 0, untilMs: 10_000)
        saved.workloads = live.saved(fromMs: 0, untilMs: 10_000).workloads
        saved.cluster = "synced"
        saved.cgroups["55"] = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8f2a6c1e_1b7d_4c1e_9a53_2b7c0f1e4d21.slice/cri-containerd-\(container).scope"
        return saved
    }

    func testCommentsNameProcessContainerAndPodFromTheSavedTables() {
        let context = AttributedPacketContext(attributor: Attributor(restoring: savedAttribution()))
        let metadata = PacketMetadata(timestampNanoseconds: 2_200_000_000, originalLength: 60, linkType: LinkType.rawIP,
                                      source: .ebpf, direction: .outbound, cgroupID: 55)
        let comment = context.comment(for: metadata, localPort: 43_210)
        for part in ["fathom source=ebpf", "direction=outbound", "pid=321", "process=curl", "cgroup_id=55",
                     "runtime=containerd", "pod_uid=8f2a6c1e-1b7d-4c1e-9a53-2b7c0f1e4d21", "container_id=\(container)", "pod=frontend-1",
                     "namespace=shop", "container=web"] {
            XCTAssertTrue(comment.split(separator: " ").contains(Substring(part)) || comment.hasPrefix(part), "\(part) in \(comment)")
        }
        let otherSocket = context.comment(for: metadata, localPort: 80)
        XCTAssertFalse(otherSocket.contains("process=curl"), "another socket of the pod is not curl's: \(otherSocket)")
        XCTAssertTrue(otherSocket.contains("pod=frontend-1"), otherSocket)
    }

    func testAPacketWithoutLocalEvidenceCarriesOnlyItsSource() {
        let context = AttributedPacketContext(attributor: Attributor(restoring: savedAttribution()))
        let metadata = PacketMetadata(timestampNanoseconds: 2_200_000_000, originalLength: 60, linkType: LinkType.ethernet,
                                      source: .pcap, direction: .unknown, cgroupID: 0)
        XCTAssertEqual(context.comment(for: metadata, localPort: nil), "fathom source=af_packet")
    }

    func testValuesWithSpacesAreQuoted() {
        XCTAssertEqual(AttributedPacketContext.quoted("Web Content"), "\"Web Content\"")
        XCTAssertEqual(AttributedPacketContext.quoted("nginx"), "nginx")
    }
}
