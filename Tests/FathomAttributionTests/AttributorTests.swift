import FathomModel
import Foundation
import XCTest
@testable import FathomAttribution

final class AttributorTests: XCTestCase {
    let id = String(repeating: "b", count: 64)

    /// A proc filesystem in a temporary directory: one process in a kubelet/containerd cgroup, one on the host.
    func fakeProc() throws -> ProcFS {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fathom-proc-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        for (pid, comm, cgroup, exe) in [
            (4242, "python3", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu_1.slice/cri-containerd-\(id).scope\n", "/usr/bin/python3.11"),
            (77, "sshd", "0::/system.slice/ssh.service\n", "/usr/sbin/sshd (deleted)"),
        ] {
            let dir = root.appendingPathComponent("\(pid)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try "\(comm)\n".write(to: dir.appendingPathComponent("comm"), atomically: true, encoding: .utf8)
            try cgroup.write(to: dir.appendingPathComponent("cgroup"), atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("exe").path, withDestinationPath: exe)
        }
        return ProcFS(root: root.path)
    }

    func testLocalProcessInAPod() throws {
        let attributor = Attributor(procfs: try fakeProc())
        attributor.setClusterSynced(true)
        attributor.table.upsert(PodRecord(namespace: "shop", name: "cart-1", uid: "u-1", node: "w1", labels: ["app": "cart"],
                                          ips: ["10.1.0.5"], containers: [ContainerRef(name: "app", id: id)], createdMs: 1), observedMs: 1)
        attributor.table.upsert(EndpointSliceRecord(namespace: "shop", name: "s", service: "cart-service", pods: ["cart-1"]))
        // Loopback traffic: the IP says nothing, the pid says everything.
        let e = attributor.endpoint(ip: "127.0.0.1", port: 8080, timestampMs: 100, pid: 4242)
        XCTAssertEqual(e.pod, "cart-1")
        XCTAssertEqual(e.service, "cart-service")
        XCTAssertEqual(e.container, "app")
        XCTAssertEqual(e.containerID, id)
        XCTAssertEqual(e.process, "python3.11")
        XCTAssertEqual(e.pid, 4242)
        XCTAssertEqual(e.resolution, "pod")
        XCTAssertEqual(e.name, "cart-1")

        let host = attributor.endpoint(ip: "127.0.0.1", port: 22, timestampMs: 100, pid: 77)
        XCTAssertEqual(host.process, "sshd")
        XCTAssertNil(host.pod)
        XCTAssertEqual(host.resolution, "host")
        XCTAssertEqual(attributor.endpoint(ip: "127.0.0.1", port: 1, timestampMs: 100, pid: 99_999).resolution, "unknown")
    }

    func testStatusesWithoutACluster() {
        let attributor = Attributor()
        attributor.dnsNames.learn(name: "api.stripe.com.", address: "203.0.113.9", ttl: 60, atMs: 1_000)
        let external = attributor.endpoint(ip: "203.0.113.9", port: 443, timestampMs: 2_000)
        XCTAssertEqual(external.dns, "api.stripe.com")
        XCTAssertEqual(external.resolution, "dns")
        XCTAssertEqual(external.name, "api.stripe.com")
        XCTAssertEqual(attributor.endpoint(ip: "203.0.113.10", port: 443, timestampMs: 2_000).resolution, "no-cluster")
        attributor.setClusterSynced(false)
        XCTAssertEqual(attributor.endpoint(ip: "203.0.113.10", port: 443, timestampMs: 2_000).resolution, "not-synced")
        attributor.setClusterSynced(true)
        XCTAssertEqual(attributor.endpoint(ip: "203.0.113.10", port: 443, timestampMs: 2_000).resolution, "unknown")
    }

    func testDNSNamesAreTimedAndBounded() {
        let names = DNSNames(capacity: 10, retentionMs: 1_000)
        names.learn(name: "a.example", address: "198.51.100.1", ttl: 5, atMs: 10_000)
        let key = IPKey("198.51.100.1")!
        XCTAssertNil(names.name(for: key, at: 1_000), "not named long before the answer")
        XCTAssertEqual(names.name(for: key, at: 14_000), "a.example")
        XCTAssertNil(names.name(for: key, at: 16_000), "forgotten after max(TTL, retention)")
        for i in 0..<100 { names.learn(name: "n\(i)", address: "198.51.100.\(i + 2)", ttl: 60, atMs: Int64(i)) }
        XCTAssertLessThanOrEqual(names.count, 10)
        names.learn(name: "", address: "198.51.100.200", ttl: 60, atMs: 0)
        names.learn(name: "x", address: "not-an-ip", ttl: 60, atMs: 0)
        XCTAssertNil(names.name(for: IPKey("198.51.100.200")!, at: 0))
    }

    func testCgroupResolverWalksADirectoryTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fathom-cgroup-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        let scope = root.appendingPathComponent("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_5e6f_7890_abcd_ef1234567890.slice/cri-containerd-\(id).scope")
        try FileManager.default.createDirectory(at: scope, withIntermediateDirectories: true)
        let inode = try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: scope.path))[.systemFileNumber] as? UInt64)
        let resolver = CgroupResolver(mountPoint: root.path, minimumRescanInterval: .seconds(3600))
        XCTAssertEqual(resolver.identity(ofCgroup: inode).containerID, id)
        XCTAssertEqual(resolver.identity(ofCgroup: inode).podUID, "1a2b3c4d-5e6f-7890-abcd-ef1234567890")
        XCTAssertNil(resolver.path(ofCgroup: 1), "unknown id")
        XCTAssertNil(resolver.path(ofCgroup: 2), "a second miss within the interval does not walk again")
        XCTAssertEqual(resolver.scanCount, 1)
    }
}
