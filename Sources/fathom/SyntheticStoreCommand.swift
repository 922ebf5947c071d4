import ArgumentParser
import FathomModel
import FathomStore
import Foundation

/// `fathom synthetic-store` (hidden): fills a calls database with generated calls and flows, for the byte-budget
/// tests and the MCP latency benchmark, through the same store API live dissection writes with.
struct SyntheticStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthetic-store", abstract: "Fill a calls database with generated calls and flows (tests, benchmarks).",
        shouldDisplay: false)

    @Option(help: "The database file (DATA_DIR/calls.db for an agent).") var db: String
    @Option(help: "Calls to generate.") var calls = 100_000
    @Option(help: "Flows to generate (one per 10 calls by default).") var flows: Int?
    @Option(help: "Time of the newest call, ms since the epoch (default: now). Calls are 1 ms apart.") var newestMs: Int64?
    @Option(help: "Size of each response body preview (default: a small JSON object).") var responseBodyBytes: Int?
    @Option(help: "Calls per transaction.") var batch = 10_000

    static let paths = ["/api/v1/checkout", "/api/v1/cart/items", "/healthz", "/api/v2/users/42", "/static/app.js", "/api/v1/orders"]

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard (responseBodyBytes ?? 0) >= 0 else { throw ValidationError("--response-body-bytes cannot be negative") }
    }

    func run() throws {
        let store = try CallsDatabase(path: db)
        let newest = newestMs ?? Int64(Date().timeIntervalSince1970 * 1000)
        let oldest = newest - Int64(calls) + 1
        let flowCount = flows ?? max(calls / 10, 1)
        let responseBody = responseBodyBytes.map { String(repeating: "x", count: $0) }
        for first in stride(from: 0, to: max(calls, flowCount), by: batch) {
            let callBatch = (first..<max(first, min(first + batch, calls))).map {
                var call = Self.call($0, ts: oldest + Int64($0))
                if let responseBody { call.response = Message(headers: call.response?.headers ?? [], bodySize: responseBody.utf8.count, body: responseBody) }
                return call
            }
            let flowBatch = (first..<max(first, min(first + batch, flowCount))).map { Self.flow($0, start: oldest + Int64($0) * 10) }
            try store.insert(callBatch, flows: flowBatch)
        }
        print("{\"calls\": \(calls), \"flows\": \(flowCount), \"oldest_ms\": \(oldest), \"newest_ms\": \(newest)}")
    }

    /// Reproducible spreads (a multiplicative hash of the index), so no field lines up with insertion order.
    private static func mix(_ index: Int) -> Int { (index &* 2_654_435_761) & 0xFFFF_FFFF }

    static func call(_ index: Int, ts: Int64) -> Call {
        let mix = mix(index)
        let body = #"{"order":\#(index),"items":[\#((0..<(mix % 40)).map { #"{"sku":"sku-\#($0)","qty":1}"# }.joined(separator: ","))]}"#
        return Call(
            id: "synthetic-\(index)", ts: ts, node: "synthetic", captureSource: .ebpf, proto: mix % 7 == 0 ? "grpc" : "http",
            src: Endpoint(ip: "10.0.0.\(mix % 250)", port: 40000 + mix % 1000, pod: "frontend-\(mix % 13)", namespace: "shop"),
            dst: Endpoint(ip: "10.0.1.\(mix % 250)", port: 8080, pod: "checkout-\(mix % 50)", namespace: "shop", service: "checkout"),
            method: mix % 3 == 0 ? "POST" : "GET", path: paths[(mix >> 3) % paths.count],
            status: [200, 200, 200, 200, 200, 200, 200, 404, 404, 503][(mix >> 5) % 10], latencyMs: Double(mix % 2000) / 3,
            requestSize: 200 + body.utf8.count, responseSize: 180,
            request: Message(headers: [Header(name: "Host", value: "shop"), Header(name: "User-Agent", value: "synthetic/1.0"),
                                       Header(name: "Authorization", value: "Bearer synthetic-secret")],
                             bodySize: body.utf8.count, body: body),
            response: Message(headers: [Header(name: "Content-Type", value: "application/json")], bodySize: 16, body: #"{"ok":true}"#),
            http: HTTPInfo(version: "HTTP/1.1", host: "shop"), connectionID: "synthetic-c\(index / 10)")
    }

    static func flow(_ index: Int, start: Int64) -> Flow {
        let mix = mix(index)
        return Flow(
            id: "synthetic-c\(index)", node: "synthetic", captureSource: .ebpf, transport: mix % 9 == 0 ? "udp" : "tcp",
            proto: mix % 9 == 0 ? "dns" : "http",
            src: Endpoint(ip: "10.0.0.\(mix % 250)", port: 40000 + mix % 1000, pod: "frontend-\(mix % 13)", namespace: "shop"),
            dst: Endpoint(ip: "10.0.1.\(mix % 250)", port: 8080, pod: "checkout-\(mix % 50)", namespace: mix % 5 == 0 ? "payments" : "shop"),
            start: start, end: start + Int64(mix % 5000), bytesSent: mix % 100_000, packetsSent: 10 + mix % 50,
            bytesReceived: mix % 300_000, packetsReceived: 12 + mix % 70, handshakeRttMs: Double(mix % 900) / 100,
            resets: mix % 17 == 0 ? 1 : 0, retransmissions: mix % 4, endReason: mix % 17 == 0 ? "rst" : "fin")
    }
}
