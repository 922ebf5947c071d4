import FathomModel
import XCTest

@testable import FathomAgent

/// The agent's pure parts; its HTTP behaviour (token, health, metrics) is driven for real in Tests/Integration.
final class AgentRoutesTests: XCTestCase {
    func testPrometheusTextAndEscaping() {
        let text = Prometheus.render([
            Metric("m", .gauge, "a\\b\nc", [(labels: [("l", "x\"y\\z\n")], value: 1.5)]),
            Metric("fathom_ring_lost_records_total", .counter, "Lost.", [(labels: [("cpu", "1")], value: 12)]),
        ])
        XCTAssertEqual(
            text,
            "# HELP m a\\\\b\\nc\n# TYPE m gauge\nm{l=\"x\\\"y\\\\z\\n\"} 1.5\n"
                + "# HELP fathom_ring_lost_records_total Lost.\n# TYPE fathom_ring_lost_records_total counter\n"
                + "fathom_ring_lost_records_total{cpu=\"1\"} 12\n")
    }

    func testListeningBeyondLoopbackNeedsAToken() throws {
        var configuration = AgentConfiguration()
        configuration.listenHost = "0.0.0.0"
        XCTAssertThrowsError(try configuration.validate()) {
            XCTAssertTrue("\($0)".contains("bearer token"))
        }
        configuration.bearerToken = "t"
        XCTAssertNoThrow(try configuration.validate())
        configuration.listenHost = "127.0.0.1"
        configuration.bearerToken = nil
        XCTAssertNoThrow(try configuration.validate())
    }

    func testTokenMustMatchExactly() {
        XCTAssertTrue(BearerToken.accepts("Bearer s3cret", token: "s3cret"))
        for header in ["Bearer s3cre", "Bearer s3creT", "Bearer s3cret ", "bearer s3cret", "s3cret", "Bearer ", ""] {
            XCTAssertFalse(BearerToken.accepts(header, token: "s3cret"), header)
        }
        XCTAssertFalse(BearerToken.accepts(nil, token: "s3cret"))
        XCTAssertFalse(BearerToken.accepts("Bearer ", token: ""), "an empty token never authorises")
    }
}
