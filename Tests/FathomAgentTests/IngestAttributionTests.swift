import FathomAttribution
import FathomModel
import XCTest

@testable import FathomAgent

final class IngestAttributionTests: XCTestCase {
    private func call(_ connection: String, at ms: Int64) -> Call {
        Call(id: "", ts: ms, node: "n", captureSource: .ebpf, proto: "http", src: Endpoint(ip: "10.2.0.1", port: 40000),
             dst: Endpoint(ip: "10.2.0.2", port: 80), connectionID: connection)
    }

    /// The calls of a keep-alive connection reuse the ends attributed for its previous call for up to a second: what
    /// is learned meanwhile (here a DNS name) shows from the first call after that, and at once on other connections.
    func testAConnectionsEndsAreReusedForASecondAtMost() {
        let attributor = Attributor()
        let ingest = IngestAttribution(attributor: attributor)
        let start: Int64 = 1_763_715_402_000
        var first = call("c1", at: start)
        ingest.attribute(&first)
        XCTAssertNil(first.dst.dns)
        XCTAssertNotNil(first.dst.resolution)

        attributor.dnsNames.learn(name: "api.test", address: "10.2.0.2", ttl: 60, atMs: start)
        var sameConnectionSoon = call("c1", at: start + 500)
        ingest.attribute(&sameConnectionSoon)
        XCTAssertEqual(sameConnectionSoon.dst, first.dst, "reused")
        var otherConnection = call("c2", at: start + 600)
        ingest.attribute(&otherConnection)
        XCTAssertEqual(otherConnection.dst.dns, "api.test")
        var sameConnectionLater = call("c1", at: start + 1_500)
        ingest.attribute(&sameConnectionLater)
        XCTAssertEqual(sameConnectionLater.dst.dns, "api.test")

        var moved = call("c1", at: start + 1_600)
        moved.dst = Endpoint(ip: "10.2.0.3", port: 80)
        ingest.attribute(&moved)
        XCTAssertNil(moved.dst.dns, "other ends are looked up, whatever the connection id")
        XCTAssertEqual(moved.dst.ip, "10.2.0.3")
    }
}
