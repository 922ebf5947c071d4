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
        }
    }
}
