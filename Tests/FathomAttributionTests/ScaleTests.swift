import FathomModel
import Foundation
import XCTest
@testable import FathomAttribution

/// A cluster of 50 K pods and 10 K services: every IP resolves, and the figures (memory, cost per attribution) are
/// printed for the README; nothing here asserts on timing.
final class ScaleTests: XCTestCase {
    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testFiftyThousandPods() {
        let before = residentBytes()
        let table = WorkloadTable()
        let pods = 50_000
        let services = 10_000
        let start = ContinuousClock.now
        for i in 0..<pods {
            let app = "app-\(i % services)"
            table.upsert(PodRecord(
                namespace: "ns-\(i % 200)", name: "\(app)-7d9f8c6b5-\(String(i, radix: 36))", uid: UUID().uuidString.lowercased(),
                node: "node-\(i % 500)", labels: ["app": app, "pod-template-hash": "7d9f8c6b5", "team": "t\(i % 40)"],
                ips: ["10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)"],
                containers: [ContainerRef(name: "app", id: String(repeating: String(i % 16, radix: 16), count: 48) + String(format: "%016x", i))],
                createdMs: 1), observedMs: 1)
        }
        for s in 0..<services {
            table.upsert(ServiceRecord(namespace: "ns-\(s % 200)", name: "app-\(s)", clusterIPs: ["172.20.\(s >> 8 & 255).\(s & 255)"]), observedMs: 1)
        }
        for s in 0..<services {
            let members = stride(from: s, to: pods, by: services).map { "app-\(s)-7d9f8c6b5-\(String($0, radix: 36))" }
            table.upsert(EndpointSliceRecord(namespace: "ns-\(s % 200)", name: "app-\(s)-abcde", service: "app-\(s)", pods: members))
        }
        let fed = ContinuousClock.now - start
        let after = residentBytes()

        let attributor = Attributor(table: table)
        attributor.setClusterSynced(true)
        var resolved = 0
        let lookups = 200_000
        let lookupStart = ContinuousClock.now
        for n in 0..<lookups {
            let i = (n &* 7919) % pods
            var endpoint = Endpoint(ip: "10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)", port: 8080)
            attributor.attribute(&endpoint, timestampMs: 10)
            if endpoint.service == "app-\(i % services)" { resolved += 1 }
        }
        let perLookup = (ContinuousClock.now - lookupStart) / lookups
        XCTAssertEqual(resolved, lookups)
        XCTAssertEqual(table.counts.pods, pods)
        print("attribution scale: \(pods) pods + \(services) services fed in \(fed), resident +\((after - before) >> 20) MiB, \(perLookup) per attribution")
    }

    /// The agent's per-packet and per-call steps: noting a packet's local socket, then naming both ends of a call.
    func testIngestCostPerPacketAndPerCall() throws {
        let attributor = Attributor()
        attributor.setClusterSynced(true)
        let pods = 5_000
        for i in 0..<pods {
            attributor.table.upsert(PodRecord(namespace: "shop", name: "pod-\(i)", node: "w1", labels: ["app": "a\(i % 50)"],
                                              ips: ["10.1.\(i >> 8).\(i & 255)"], createdMs: 1), observedMs: 1)
        }
        let owners = SocketOwners()
        let keys = (0..<pods).map { IPKey(v4: 0x0A01_0000 | UInt32($0)) }
        let packets = 1_000_000
        let packetStart = ContinuousClock.now
        for n in 0..<packets {
            owners.record(ip: keys[n % pods], port: UInt16(30_000 + n % 1_000), cgroupID: UInt64(n % pods + 1), pid: nil, atMs: Int64(n / 1_000))
        }
        let perPacket = (ContinuousClock.now - packetStart) / packets
        XCTAssertLessThanOrEqual(owners.count, owners.capacity)
        var named = 0
        let callCount = 100_000
        let callStart = ContinuousClock.now
        for n in 0..<callCount {
            let a = n % pods, b = (n &* 7919) % pods
            var call = Call(id: "", ts: 10, node: "w1", captureSource: .ebpf, proto: "http",
                            src: Endpoint(ip: "10.1.\(a >> 8).\(a & 255)", port: 30_000 + n % 1_000),
                            dst: Endpoint(ip: "10.1.\(b >> 8).\(b & 255)", port: 8080))
            attributor.attribute(&call, owners: owners)
            if call.src.pod == "pod-\(a)" && call.dst.pod == "pod-\(b)" { named += 1 }
        }
        let perCall = (ContinuousClock.now - callStart) / callCount
        XCTAssertEqual(named, callCount)
        print("attribution ingest: \(perPacket) per packet (socket owner), \(perCall) per call (both ends, call construction included)")
    }
}
