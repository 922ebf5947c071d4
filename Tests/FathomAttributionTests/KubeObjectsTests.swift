import Foundation
import XCTest
@testable import FathomAttribution

final class KubeObjectsTests: XCTestCase {
    func testTimestamps() {
        XCTAssertEqual(Kube.milliseconds("1970-01-01T00:00:00Z"), 0)
        XCTAssertEqual(Kube.milliseconds("2026-11-21T09:30:00Z"), 1_795_253_400_000)
        XCTAssertEqual(Kube.milliseconds("2026-11-21T09:30:00.250Z"), 1_795_253_400_250)
        XCTAssertEqual(Kube.milliseconds("2026-11-21T10:30:00+01:00"), 1_795_253_400_000)
        XCTAssertEqual(Kube.milliseconds("2000-02-29T00:00:00Z"), 951_782_400_000)
        XCTAssertNil(Kube.milliseconds("yesterday"))
        XCTAssertNil(Kube.milliseconds("2026-13-01T00:00:00Z"))
    }

    func testPodJSON() throws {
        let json = """
            {"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"cart-5d8f","namespace":"shop",
            "uid":"1a2b3c4d-5e6f-7890-abcd-ef1234567890","resourceVersion":"812","creationTimestamp":"2026-11-21T09:30:00Z",
            "labels":{"app":"cart"},"managedFields":[{"manager":"kubelet"}]},
            "spec":{"nodeName":"worker-1","containers":[{"name":"app","image":"x"}]},
            "status":{"phase":"Running","podIP":"10.1.0.5","podIPs":[{"ip":"10.1.0.5"},{"ip":"fd00::5"}],
            "containerStatuses":[{"name":"app","containerID":"containerd://\(String(repeating: "a", count: 64))"},
            {"name":"sidecar"}]}}}
            """
        let event = try JSONDecoder().decode(Kube.Event<Kube.Pod>.self, from: Data(json.utf8))
        let pod = event.object.record
        XCTAssertEqual(pod.ips, ["10.1.0.5", "fd00::5"])
        XCTAssertEqual(pod.containers, [ContainerRef(name: "app", id: String(repeating: "a", count: 64))])
        XCTAssertEqual(pod.createdMs, 1_795_253_400_000)
        XCTAssertEqual(pod.node, "worker-1")

        var finished = event.object
        finished.status?.phase = "Succeeded"
        XCTAssertEqual(finished.record.ips, [], "a finished pod has released its IP")
        var host = event.object
        host.spec?.hostNetwork = true
        XCTAssertEqual(host.record.ips, [], "host-network pods are named by their node")
    }

    func testSliceServiceNodeJSON() throws {
        let slice = try JSONDecoder().decode(Kube.EndpointSlice.self, from: Data("""
            {"metadata":{"name":"cart-x7k2p","namespace":"shop","labels":{"kubernetes.io/service-name":"cart"}},
             "addressType":"IPv4","endpoints":[{"addresses":["10.1.0.5"],"targetRef":{"kind":"Pod","name":"cart-5d8f"}},
             {"addresses":["10.1.0.99"]}]}
            """.utf8)).record
        XCTAssertEqual(slice, EndpointSliceRecord(namespace: "shop", name: "cart-x7k2p", service: "cart", pods: ["cart-5d8f"]))
        let headless = try JSONDecoder().decode(Kube.Service.self, from: Data("""
            {"metadata":{"name":"db","namespace":"shop"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}
            """.utf8)).record
        XCTAssertEqual(headless.clusterIPs, [])
        let node = try JSONDecoder().decode(Kube.Node.self, from: Data("""
            {"metadata":{"name":"w1"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.1.4"},
             {"type":"Hostname","address":"w1"},{"type":"ExternalIP","address":"203.0.113.4"}]}}
            """.utf8)).record
        XCTAssertEqual(node.addresses, ["192.168.1.4", "203.0.113.4"])
    }
}
