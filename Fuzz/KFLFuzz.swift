import FathomKFL
import FathomModel

/// Any input either compiles or throws a KFLError; a compiled filter evaluates every sample call without crashing,
/// and its plan agrees with full evaluation.
enum KFLFuzzSamples {
    static let calls: [Call] = [
        Call(id: "f-1", ts: 1_700_000_000_000, node: "n", captureSource: .ebpf, proto: "http",
             src: Endpoint(ip: "10.0.0.1", port: 1, pod: "frontend", namespace: "shop", service: "frontend", labels: ["app": "x"]),
             dst: Endpoint(ip: "10.0.0.2", port: 80, pod: "checkout", namespace: "shop"),
             method: "GET", path: "/api/v1/checkout", query: "a=1&b=%E6%97%A5", status: 503, latencyMs: 12.5,
             request: Message(headers: [Header(name: "User-Agent", value: "curl"), Header(name: "Cookie", value: "s=1; t")]),
             response: Message(headers: [Header(name: "Set-Cookie", value: "sid=2; Path=/")], body: "日本"),
             http: HTTPInfo(version: "HTTP/1.1")),
        Call(id: "f-2", ts: 0, node: "", captureSource: .pcap, proto: "dns", src: Endpoint(ip: "", port: 0),
             dst: Endpoint(ip: "", port: 0), method: "A", path: "example.com",
             dns: DNSInfo(transactionID: 1, questions: [.init(name: "example.com", type: "A")], rcode: "NXDOMAIN"),
             tls: TLSInfo(version: "TLS 1.3", sni: "example.com", alpn: ["h2"])),
    ]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let source = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let filter = try? KFL.compile(source, now: 1_700_000_060_000_000_000) else { return 0 }
    for call in KFLFuzzSamples.calls {
        let full = filter.matches(call)
        let pushed = filter.plan.pushed.allSatisfy { predicate in
            // Evaluate the pushed predicate through the catalogue, as a store that mirrors KFL's columns would.
            guard let field = KFL.fields.first(where: { $0.name == predicate.field }) else { return false }
            let value = field.value(of: call)
            switch (predicate.operator, value, predicate.value) {
            case (.equal, _, _): return value == predicate.value
            case (.in, _, .list(let items)): return items.contains(value)
            case (.prefix, .string(let text), .string(let prefix)): return text.utf8.starts(with: prefix.utf8)
            case (.less, .int(let a), .int(let b)), (.less, .timestamp(let a), .timestamp(let b)): return a < b
            case (.lessOrEqual, .int(let a), .int(let b)), (.lessOrEqual, .timestamp(let a), .timestamp(let b)): return a <= b
            case (.greater, .int(let a), .int(let b)), (.greater, .timestamp(let a), .timestamp(let b)): return a > b
            case (.greaterOrEqual, .int(let a), .int(let b)), (.greaterOrEqual, .timestamp(let a), .timestamp(let b)): return a >= b
            default: return false
            }
        }
        if full != (pushed && filter.plan.residualMatches(call)) {
            fatalError("plan disagrees with full evaluation for \(source)")
        }
    }
    return 0
}
