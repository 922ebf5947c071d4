import FathomModel
import Foundation
import XCTest
@testable import FathomAttribution

/// A snapshot's saved attribution names its traffic as the live tables named it, after the pods are gone.
final class SavedAttributionTests: XCTestCase {
    let oldContainer = String(repeating: "a", count: 64)
    let newContainer = String(repeating: "b", count: 64)

    /// cart-1 owns 10.1.0.5 from 1 s to 5 s (serving cart-service); checkout-1 reuses the IP from 6 s.
    func liveAttributor() -> Attributor {
        let attributor = Attributor()
        attributor.setClusterSynced(true)
        let table = attributor.table
        table.upsert(PodRecord(namespace: "shop", name: "cart-1", uid: "u-1", node: "w1", labels: ["app": "cart"],
                               ips: ["10.1.0.5"], containers: [ContainerRef(name: "app", id: oldContainer)], createdMs: 1_000),
                     observedMs: 1_000)
        table.upsert(EndpointSliceRecord(namespace: "shop", name: "cart-abc", service: "cart-service", pods: ["cart-1"]))
        table.upsert(ServiceRecord(namespace: "shop", name: "cart-service", clusterIPs: ["10.96.0.10"], createdMs: 500), observedMs: 500)
        table.deletePod(namespace: "shop", name: "cart-1", observedMs: 5_000)
        table.upsert(PodRecord(namespace: "shop", name: "checkout-1", uid: "u-2", node: "w1", ips: ["10.1.0.5"],
                               containers: [ContainerRef(name: "web", id: newContainer)], createdMs: 6_000), observedMs: 6_000)
        attributor.dnsNames.learn(name: "api.example.com", address: "93.184.216.34", ttl: 60, atMs: 2_000)
        return attributor
    }

    func restored(_ attributor: Attributor, fromMs: Int64, untilMs: Int64) throws -> Attributor {
        let data = try JSONEncoder().encode(attributor.saved(fromMs: fromMs, untilMs: untilMs))
        return Attributor(restoring: try JSONDecoder().decode(SavedAttribution.self, from: data))
    }

    func testRestoredTablesNameTrafficAsTheLiveOnesDid() throws {
        let live = liveAttributor()
        let saved = try restored(live, fromMs: 0, untilMs: 10_000)
        for (ip, at) in [("10.1.0.5", Int64(3_000)), ("10.1.0.5", 7_000), ("10.96.0.10", 3_000), ("93.184.216.34", 2_500),
                         ("10.1.0.5", 5_500), ("10.9.9.9", 3_000)] {
            XCTAssertEqual(saved.endpoint(ip: ip, port: 80, timestampMs: at), live.endpoint(ip: ip, port: 80, timestampMs: at),
                           "\(ip) at \(at)")
        }
        let old = saved.endpoint(ip: "10.1.0.5", port: 80, timestampMs: 3_000)
        XCTAssertEqual([old.pod, old.namespace, old.service, old.container], ["cart-1", "shop", "cart-service", "app"])
        XCTAssertEqual(saved.endpoint(ip: "10.1.0.5", port: 80, timestampMs: 7_000).pod, "checkout-1")
    }

    func testADeletedPodsContainerStillNamesItsLocalTraffic() throws {
        let saved = try restored(liveAttributor(), fromMs: 0, untilMs: 10_000)
        let path = "/kubepods.slice/kubepods-pod\("u_1").slice/cri-containerd-\(oldContainer).scope"
        let withPath = Attributor(restoring: {
            var s = saved.saved(fromMs: 0, untilMs: 10_000)
            s.cgroups["77"] = path
            return s
        }())
        var endpoint = Endpoint(ip: "127.0.0.1", port: 9000)
        withPath.attribute(&endpoint, timestampMs: 3_000, cgroupID: 77)
        XCTAssertEqual([endpoint.pod, endpoint.container, endpoint.resolution], ["cart-1", "app", "pod"])
    }

    func testTheWindowBoundsWhatIsSaved() {
        let saved = liveAttributor().saved(fromMs: 7_000, untilMs: 8_000)
        XCTAssertEqual(saved.cluster, "synced")
        XCTAssertEqual(Set(saved.workloads.intervals.map { saved.workloads.owners[$0.owner].name }), ["checkout-1", "cart-service"],
                       "cart-1 had left the IP before the window")
        XCTAssertTrue(saved.dnsNames.isEmpty == false, "a name learned before the window may still name its traffic")
        XCTAssertTrue(liveAttributor().saved(fromMs: 0, untilMs: 500).workloads.intervals.allSatisfy { $0.fromMs <= 500 })
    }
}
