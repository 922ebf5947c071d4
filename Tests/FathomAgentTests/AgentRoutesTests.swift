import FathomCapture
import FathomModel
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import FathomAgent

final class AgentRoutesTests: XCTestCase {
    final class FixedMetrics: MetricsSource, Sendable {
        func metrics() -> [Metric] {
            [Metric("fathom_ring_lost_records_total", .counter, "Lost \"records\".",
                    [(labels: [("cpu", "0")], value: 0), (labels: [("cpu", "1")], value: 12)])]
        }
    }

    private func routes(token: String? = nil) -> AgentRoutes {
        let status = AgentStatus(features: KernelFeatures.probe(), captureSource: .pcap, fallbackReason: "no CAP_BPF")
        return AgentRoutes(status: status, metricSources: [FixedMetrics()], bearerToken: token, setPaused: { _ in })
    }

    func testMetricsAreValidPrometheusText() async throws {
        let app = Application(router: routes().router())
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], Prometheus.contentType)
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains("fathom_up{capture_source=\"af_packet\"} 1\n"), text)
                XCTAssertTrue(text.contains("# TYPE fathom_ring_lost_records_total counter\n"), text)
                XCTAssertTrue(text.contains("fathom_ring_lost_records_total{cpu=\"1\"} 12\n"), text)
            }
        }
    }

    func testHealthSaysWhyEBPFIsNotUsed() async throws {
        let app = Application(router: routes().router())
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains("\"fallbackReason\":\"no CAP_BPF\""), text)
                XCTAssertTrue(text.contains("\"captureSource\":\"af_packet\""), text)
            }
        }
    }

    func testTokenIsRequiredExceptForHealth() async throws {
        let app = Application(router: routes(token: "s3cret").router())
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { XCTAssertEqual($0.status, .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong"]) {
                XCTAssertEqual($0.status, .unauthorized)
                XCTAssertFalse(String(buffer: $0.body).contains("s3cret"))
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer s3cret"]) {
                XCTAssertEqual($0.status, .ok)
            }
            try await client.execute(uri: "/healthz", method: .get) { XCTAssertEqual($0.status, .ok) }
        }
    }

    func testPrometheusEscaping() {
        let text = Prometheus.render([Metric("m", .gauge, "a\\b\nc", [(labels: [("l", "x\"y\\z\n")], value: 1.5)])])
        XCTAssertEqual(text, "# HELP m a\\\\b\\nc\n# TYPE m gauge\nm{l=\"x\\\"y\\\\z\\n\"} 1.5\n")
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
}
