import XCTest
@testable import FathomAttribution

final class WorkloadTableTests: XCTestCase {
    func pod(_ name: String, ip: String, created: Int64 = 1_000, uid: String = "", containers: [ContainerRef] = []) -> PodRecord {
        PodRecord(namespace: "shop", name: name, uid: uid, node: "worker-1", labels: ["app": String(name.prefix { $0 != "-" })],
                  ips: [ip], containers: containers, createdMs: created)
    }

    func testReusedIPKeepsOldTrafficOnOldPod() {
        let table = WorkloadTable()
        table.upsert(pod("cart-1", ip: "10.1.0.5", created: 1_000), observedMs: 2_000)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: ["cart-1"]))
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 1_500)?.workload.name, "cart-1", "traffic before the list is named")
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 1_500)?.services, ["cart-service"])
        XCTAssertNil(table.lookup(ip: "10.1.0.5", at: 999), "nothing owned the IP before the pod existed")

        table.deletePod(namespace: "shop", name: "cart-1", observedMs: 10_000)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: []))
        XCTAssertNil(table.lookup(ip: "10.1.0.5", at: 11_000))
        table.upsert(pod("payment-1", ip: "10.1.0.5", created: 12_000), observedMs: 12_100)

        let old = table.lookup(ip: "10.1.0.5", at: 5_000)
        XCTAssertEqual(old?.workload.name, "cart-1")
        XCTAssertEqual(old?.services, ["cart-service"], "services are frozen when the pod goes")
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 12_050)?.workload.name, "payment-1")
        XCTAssertEqual(table.lookup(ip: "::ffff:10.1.0.5", at: 20_000)?.workload.name, "payment-1")
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 20_000)?.services, [])
    }

    func testReuseSeenBeforeTheDelete() {
        // The new pod's event arrives before the old pod's DELETED: the old interval ends where the new one starts.
        let table = WorkloadTable()
        table.upsert(pod("a", ip: "10.1.0.9", created: 1_000), observedMs: 1_000)
        table.upsert(pod("b", ip: "10.1.0.9", created: 5_000), observedMs: 5_100)
        table.deletePod(namespace: "shop", name: "a", observedMs: 6_000)
        XCTAssertEqual(table.lookup(ip: "10.1.0.9", at: 4_999)?.workload.name, "a")
        XCTAssertEqual(table.lookup(ip: "10.1.0.9", at: 5_000)?.workload.name, "b")
        XCTAssertEqual(table.lookup(ip: "10.1.0.9", at: 7_000)?.workload.name, "b", "a late delete of a leaves b alone")
    }

    func testServiceKeptWhenTheSliceDropsThePodBeforeItsDelete() {
        let table = WorkloadTable()
        table.upsert(pod("cart-1", ip: "10.1.0.5"), observedMs: 2_000)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: ["cart-1"]))
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: []))
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 3_000)?.services, [], "a terminating pod is no endpoint")
        table.deletePod(namespace: "shop", name: "cart-1", observedMs: 10_000)
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 3_000)?.services, ["cart-service"], "its traffic still names the service")
    }

    /// The pod stream runs ahead of the EndpointSlice stream: the pod is deleted (and its IP reused) before the slice
    /// that names it is applied. The closed interval still learns the service it served.
    func testServiceLearnedAfterThePodsDelete() {
        let table = WorkloadTable()
        table.upsert(pod("cart-1", ip: "10.1.0.5", created: 1_000), observedMs: 2_000)
        table.deletePod(namespace: "shop", name: "cart-1", observedMs: 3_000)
        table.upsert(pod("db-0", ip: "10.1.0.5", created: 3_500), observedMs: 4_000)
        table.replaceSlices([EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: ["cart-1"]),
                             EndpointSliceRecord(namespace: "shop", name: "db-abc", service: "db", pods: ["db-0"])])
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: []))
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 2_500)?.workload.name, "cart-1")
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 2_500)?.services, ["cart-service"])
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 5_000)?.services, ["db"])
        // A pod of the same name coming back is a new pod: old news no longer patches anything.
        table.upsert(pod("cart-1", ip: "10.1.0.9", created: 6_000), observedMs: 6_000)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "other", service: "other", pods: ["cart-1"]))
        XCTAssertEqual(table.lookup(ip: "10.1.0.5", at: 2_500)?.services, ["cart-service"])
    }

    func testServicesNodesAndContainers() {
        let table = WorkloadTable()
        let id = String(repeating: "c", count: 64)
        table.upsert(pod("frontend-7d9", ip: "10.1.0.7", uid: "u-1", containers: [ContainerRef(name: "web", id: id)]), observedMs: 1_000)
        table.upsert(ServiceRecord(namespace: "shop", name: "frontend", clusterIPs: ["10.96.0.10", "fd00::10"]), observedMs: 1_000)
        table.upsert(NodeRecord(name: "worker-1", addresses: ["192.168.1.10"]), observedMs: 1_000)
        XCTAssertEqual(table.lookup(ip: "10.96.0.10", at: 2_000)?.workload.kind, .service)
        XCTAssertEqual(table.lookup(ip: "fd00:0::10", at: 2_000)?.workload.name, "frontend")
        XCTAssertEqual(table.lookup(ip: "192.168.1.10", at: 2_000)?.workload.kind, .node)
        XCTAssertEqual(table.pod(containerID: id)?.container?.name, "web")
        XCTAssertEqual(table.pod(uid: "u-1")?.workload.name, "frontend-7d9")
        table.replacePods([], observedMs: 3_000)
        XCTAssertNil(table.pod(containerID: id))
        XCTAssertEqual(table.lookup(ip: "10.1.0.7", at: 2_500)?.workload.name, "frontend-7d9")
        XCTAssertNil(table.lookup(ip: "10.1.0.7", at: 3_500))
        table.replaceServices([], observedMs: 4_000)
        XCTAssertNil(table.lookup(ip: "10.96.0.10", at: 4_500))
    }

    func testMemoryIsBounded() {
        let table = WorkloadTable(retentionMs: 1_000, maximumHistoryPerIP: 3)
        for i in 0..<20 {
            table.upsert(pod("p\(i)", ip: "10.2.0.1", created: Int64(i) * 100), observedMs: Int64(i) * 100)
        }
        XCTAssertEqual(table.counts.intervals, 3, "history per IP is capped")
        XCTAssertEqual(table.lookup(ip: "10.2.0.1", at: 1_950)?.workload.name, "p19")
        table.replacePods([], observedMs: 2_000)
        table.prune(nowMs: 10_000)
        XCTAssertEqual(table.counts.intervals, 0)
        XCTAssertEqual(table.counts.strings, 0, "names of forgotten pods are released")
    }

    func testLabelsAndNamesAreShared() {
        let table = WorkloadTable()
        for i in 0..<100 {
            table.upsert(PodRecord(namespace: "shop", name: "web-\(i)", labels: ["app": "web", "tier": "front"],
                                   ips: ["10.3.0.\(i)"]), observedMs: 1)
        }
        XCTAssertEqual(table.counts.pods, 100)
        // 100 names + "shop" + "" + 2 keys + 2 values.
        XCTAssertEqual(table.counts.strings, 106)
    }

    func testIPKeyCanonicalForms() {
        XCTAssertEqual(IPKey("10.0.0.1"), IPKey("::ffff:10.0.0.1"))
        XCTAssertEqual(IPKey("fd00:0:0::1"), IPKey("fd00::1"))
        XCTAssertEqual(IPKey("fd00::1")?.description, "fd00::1")
        XCTAssertEqual(IPKey("10.0.0.1")?.description, "10.0.0.1")
        XCTAssertNil(IPKey("10.0.0.256"))
        XCTAssertNil(IPKey("frontend"))
        XCTAssertNil(IPKey(""))
    }
}
