import FathomModel
import Foundation
import XCTest

final class CompactCallJSONTests: XCTestCase {
    private func call(path: String, latency: Double, flags: CallFlags = CallFlags(), pod: String? = nil) -> Call {
        Call(
            id: "n-1", ts: 1_763_715_402_123, node: "n", captureSource: .ebpf, proto: "http",
            src: Endpoint(ip: "10.0.0.1", port: 43210, pod: pod, namespace: pod == nil ? nil : "shop"),
            dst: Endpoint(ip: "fd00::2", port: 8080, service: "frontend"), method: "GET", path: path, status: 503,
            latencyMs: latency, flags: flags)
    }

    /// The fast writer `fathom dissect` uses must say exactly what JSONEncoder says.
    func testMatchesJSONEncoderByteForByte() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let calls = [
            call(path: "/api/v1/checkout", latency: 12.5),
            call(path: "/q\"uote\\back/slash\n\t\r\u{08}\u{0C}\u{01}é😀", latency: 0.0004, flags: CallFlags(gap: true, truncated: true)),
            call(path: "", latency: 3, pod: "frontend-7d4b9"),
            call(path: "/x", latency: 1234567.891, flags: CallFlags(noResponse: true, noRequest: true)),
        ]
        for c in calls {
            var ours: [UInt8] = []
            c.compact.appendJSON(to: &ours)
            XCTAssertEqual(String(decoding: ours, as: UTF8.self), String(decoding: try encoder.encode(c.compact), as: UTF8.self))
            var direct: [UInt8] = []
            c.appendCompactJSON(to: &direct)
            XCTAssertEqual(direct, ours)
        }
    }

    /// Latencies are written from their digits, not through `String(Double)`: every rounding of them must still read
    /// as JSONEncoder writes it, from a microsecond to hours, and odd values (not rounded) too.
    func testLatenciesMatchJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        var latencies: [Double] = [0.001, 0.01, 0.1, 0.999, 1.001, 10.05, 0.0005, 999_999.999, 1e9 + 0.5, 123_456_789_012.5]
        for _ in 0..<20_000 {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            let magnitude = [1_000, 100_000, 10_000_000, 10_000_000_000][Int(random >> 62)]
            latencies.append(Double(Int(random >> 20) % magnitude) / 1000 + Double(random >> 61) / 10_000_000)
        }
        for latency in latencies {
            let c = call(path: "/", latency: latency)
            var ours: [UInt8] = []
            c.appendCompactJSON(to: &ours)
            XCTAssertEqual(
                String(decoding: ours, as: UTF8.self), String(decoding: try encoder.encode(c.compact), as: UTF8.self),
                "latency \(latency)")
        }
    }
}
