import FathomModel
import Foundation
import XCTest
@testable import FathomAttribution

/// Calls named at ingest time: local ends from the sockets capture saw (cgroup id → container → pod, and the cgroup's
/// process), remote ends from the IP table.
final class CallAttributionTests: XCTestCase {
    let frontendID = String(repeating: "f", count: 64)
    let cartID = String(repeating: "c", count: 64)

    /// A cgroup v2 hierarchy in a temporary directory (directory inodes stand for cgroup ids), with kubelet/containerd
    /// paths for two pods, and a proc filesystem with one process in the frontend container.
    func fakeNode() throws -> (cgroups: CgroupResolver, procfs: ProcFS, frontend: UInt64, cart: UInt64, cartPod: UInt64) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fathom-node-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        let mount = root.appendingPathComponent("cgroup")
        func container(_ uid: String, _ id: String) throws -> (pod: URL, container: URL) {
            let pod = mount.appendingPathComponent(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uid.replacingOccurrences(of: "-", with: "_")).slice")
            let container = pod.appendingPathComponent("cri-containerd-\(id).scope")
            try FileManager.default.createDirectory(at: container, withIntermediateDirectories: true)
            return (pod, container)
        }
        let frontend = try container("11111111-2222-3333-4444-555555555555", frontendID)
        let cart = try container("66666666-7777-8888-9999-000000000000", cartID)
        try "31337\n".write(to: frontend.container.appendingPathComponent("cgroup.procs"), atomically: true, encoding: .utf8)
        try "".write(to: cart.container.appendingPathComponent("cgroup.procs"), atomically: true, encoding: .utf8)
        let proc = root.appendingPathComponent("proc/31337")
        try FileManager.default.createDirectory(at: proc, withIntermediateDirectories: true)
        try "curl\n".write(to: proc.appendingPathComponent("comm"), atomically: true, encoding: .utf8)
        try "0::/kubepods.slice/x/cri-containerd-\(frontendID).scope\n".write(
            to: proc.appendingPathComponent("cgroup"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: proc.appendingPathComponent("exe").path, withDestinationPath: "/usr/bin/curl")
        func inode(_ url: URL) throws -> UInt64 {
            try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? NSNumber)?.uint64Value)
        }
        return (CgroupResolver(mountPoint: mount.path, minimumRescanInterval: .zero), ProcFS(root: root.appendingPathComponent("proc").path),
                try inode(frontend.container), try inode(cart.container), try inode(cart.pod))
    }

    func shop(_ table: WorkloadTable) {
        table.upsert(PodRecord(namespace: "shop", name: "frontend-1", uid: "11111111-2222-3333-4444-555555555555", node: "w1",
                               labels: ["app": "frontend"], ips: ["10.244.0.10"],
                               containers: [ContainerRef(name: "web", id: frontendID)], createdMs: 1), observedMs: 1)
        table.upsert(PodRecord(namespace: "shop", name: "cart-1", uid: "66666666-7777-8888-9999-000000000000", node: "w1",
                               labels: ["app": "cart"], ips: ["10.244.0.11"],
                               containers: [ContainerRef(name: "app", id: cartID)], createdMs: 1), observedMs: 1)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-x", service: "cart-service", pods: ["cart-1"]))
    }

    func testBothEndsOfACallFromTheirSockets() throws {
        let node = try fakeNode()
        let attributor = Attributor(cgroups: node.cgroups, procfs: node.procfs)
        attributor.setClusterSynced(true)
        shop(attributor.table)
        let owners = SocketOwners()
        // The client's packets leave its socket (source local), the server's arrive at its own (destination local).
        owners.record(ip: try XCTUnwrap(IPKey("10.244.0.10")), port: 40_000, cgroupID: node.frontend, pid: nil, atMs: 100)
        owners.record(ip: try XCTUnwrap(IPKey("10.244.0.11")), port: 8080, cgroupID: node.cart, pid: nil, atMs: 100)
        var call = Call(id: "1", ts: 100, node: "w1", captureSource: .ebpf, proto: "http",
                        src: Endpoint(ip: "10.244.0.10", port: 40_000), dst: Endpoint(ip: "10.244.0.11", port: 8080))
        attributor.attribute(&call, owners: owners)
        XCTAssertEqual(call.src.pod, "frontend-1")
        XCTAssertEqual(call.src.container, "web")
        XCTAssertEqual(call.src.containerID, frontendID)
        XCTAssertEqual(call.src.process, "curl", "the only process of the client's cgroup")
        XCTAssertEqual(call.src.pid, 31337)
        XCTAssertEqual(call.src.labels, ["app": "frontend"])
        XCTAssertEqual(call.src.resolution, "pod")
        XCTAssertEqual(call.dst.pod, "cart-1")
        XCTAssertEqual(call.dst.service, "cart-service")
        XCTAssertEqual(call.dst.namespace, "shop")
        XCTAssertEqual(call.dst.node, "w1")
        XCTAssertNil(call.dst.process, "no process in the server's cgroup: none is made up")
    }

    func testLoopbackCallIsNamedByItsCgroupsNotItsIP() throws {
        let node = try fakeNode()
        let attributor = Attributor(cgroups: node.cgroups, procfs: node.procfs)
        attributor.setClusterSynced(true)
        shop(attributor.table)
        let owners = SocketOwners()
        let loopback = try XCTUnwrap(IPKey("127.0.0.1"))
        owners.record(ip: loopback, port: 5000, cgroupID: node.frontend, pid: nil, atMs: 1)
        owners.record(ip: loopback, port: 8080, cgroupID: node.cart, pid: nil, atMs: 1)
        var call = Call(id: "1", ts: 5, node: "w1", captureSource: .ebpf, proto: "http",
                        src: Endpoint(ip: "127.0.0.1", port: 5000), dst: Endpoint(ip: "127.0.0.1", port: 8080))
        attributor.attribute(&call, owners: owners)
        XCTAssertEqual([call.src.pod, call.dst.pod], ["frontend-1", "cart-1"])
    }

    func testUnseenRemoteEndFallsBackToTheTableAndThenToAStatus() throws {
        let attributor = Attributor()
        attributor.setClusterSynced(true)
        shop(attributor.table)
        var call = Call(id: "1", ts: 5, node: "w1", captureSource: .ebpf, proto: "http",
                        src: Endpoint(ip: "10.9.9.9", port: 5000), dst: Endpoint(ip: "10.244.0.11", port: 8080))
        attributor.attribute(&call, owners: SocketOwners())
        XCTAssertEqual(call.dst.pod, "cart-1")
        XCTAssertEqual(call.dst.resolution, "pod")
        XCTAssertNil(call.src.pod)
        XCTAssertEqual(call.src.resolution, "unknown")
    }

    func testSocketOwnersKeepTLSPidsAndStayBounded() throws {
        let owners = SocketOwners(capacity: 16, idleMs: 1_000)
        let ip = try XCTUnwrap(IPKey("10.0.0.1"))
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: 42, atMs: 10)
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: nil, atMs: 20)
        XCTAssertEqual(owners.owner(ip: ip, port: 1)?.pid, 42, "a packet record does not erase the pid a TLS record gave")
        owners.record(ip: ip, port: 1, cgroupID: 8, pid: nil, atMs: 30)
        XCTAssertEqual(owners.owner(ip: ip, port: 1), SocketOwners.Owner(cgroupID: 8, pid: nil, lastSeenMs: 30),
                       "another cgroup took the address: the old pid goes")
        owners.record(ip: ip, port: 2, cgroupID: 0, pid: nil, atMs: 30)
        XCTAssertNil(owners.owner(ip: ip, port: 2), "cgroup id 0 (no socket) says nothing")
        for port in 100..<200 { owners.record(ip: ip, port: UInt16(port), cgroupID: 1, pid: nil, atMs: Int64(port)) }
        XCTAssertLessThanOrEqual(owners.count, 16)
        XCTAssertNotNil(owners.owner(ip: ip, port: 199), "the newest entry survives making room")
        owners.prune(nowMs: 5_000)
        XCTAssertEqual(owners.count, 0)
    }

    func testASocketSeenAgainWithinASecondIsNotRewritten() throws {
        let owners = SocketOwners(capacity: 16, idleMs: 1_000)
        let ip = try XCTUnwrap(IPKey("10.0.0.1"))
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: nil, atMs: 10_000)
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: nil, atMs: 10_500)
        XCTAssertEqual(owners.owner(ip: ip, port: 1)?.lastSeenMs, 10_000, "the same owner half a second later: not rewritten")
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: 5, atMs: 10_600)
        XCTAssertEqual(owners.owner(ip: ip, port: 1)?.pid, 5, "a new owner detail is taken at once")
        owners.record(ip: ip, port: 1, cgroupID: 7, pid: 5, atMs: 11_700)
        XCTAssertEqual(owners.owner(ip: ip, port: 1)?.lastSeenMs, 11_700, "refreshed a second later")
        owners.prune(nowMs: 12_500)
        XCTAssertNotNil(owners.owner(ip: ip, port: 1), "a socket in use is not idled out")
    }

    func testPodCgroupsAreFoundByUID() throws {
        let node = try fakeNode()
        let pods = node.cgroups.podCgroupIDs(refresh: true)
        XCTAssertEqual(pods["66666666-7777-8888-9999-000000000000"], node.cartPod)
        XCTAssertEqual(pods.count, 2)
        XCTAssertEqual(node.cgroups.processes(ofCgroup: node.frontend), [31337])
    }
}
