import FathomModel

/// A fixed set of hand-built calls covering every protocol and identity shape the expression table asks about.
enum Fixtures {
    /// 2023-11-14T22:13:20Z, the first call's start.
    static let baseMilliseconds: Int64 = 1_700_000_000_000
    /// `now()` in every test: one minute after the first call.
    static let now: Int64 = (baseMilliseconds + 60_000) * 1_000_000

    static let frontend = Endpoint(ip: "10.0.1.5", port: 43512, pod: "frontend-7d9f", namespace: "shop", service: "frontend",
                                   node: "node-a", container: "web", process: "node", pid: 311, labels: ["app": "frontend", "tier": "web"])

    static let calls: [Call] = [
        Call(id: "a-1", ts: baseMilliseconds, node: "node-a", captureSource: .ebpf, proto: "http", src: frontend,
             dst: Endpoint(ip: "10.0.2.9", port: 8080, pod: "checkout-5b", namespace: "shop", service: "checkout", node: "node-c",
                           labels: ["app": "checkout"]),
             method: "GET", path: "/api/v1/checkout", query: "page=2&q=caf%C3%A9&q=second&flag", status: 503, latencyMs: 120.5,
             requestSize: 300, responseSize: 120,
             request: Message(headers: [Header(name: "User-Agent", value: "curl/8.0"), Header(name: "X-Request-ID", value: "abc"),
                                        Header(name: "Cookie", value: "session=s1; theme=dark")]),
             response: Message(headers: [Header(name: "Retry-After", value: "5"), Header(name: "Set-Cookie", value: "sid=xyz; Path=/")],
                               bodySize: 19, body: "service unavailable"),
             http: HTTPInfo(version: "HTTP/1.1", host: "shop.local", statusText: "Service Unavailable"), connectionID: "c-1"),
        Call(id: "a-2", ts: baseMilliseconds + 1000, node: "node-a", captureSource: .ebpfTLS, proto: "http2", src: frontend,
             dst: Endpoint(ip: "10.0.2.10", port: 8443, namespace: "shop", service: "checkout"),
             method: "POST", path: "/api/v1/checkout", status: 200, latencyMs: 35,
             request: Message(headers: [Header(name: "content-type", value: "application/json")], bodySize: 27,
                              body: "{\"card\":\"4111111111111111\"}"),
             http: HTTPInfo(version: "HTTP/2", host: "checkout.shop"), connectionID: "c-2"),
        Call(id: "a-3", ts: baseMilliseconds + 2000, node: "node-a", captureSource: .ebpf, proto: "grpc",
             src: Endpoint(ip: "10.0.1.7", port: 50000, pod: "cart-client", namespace: "shop", node: "node-a"),
             dst: Endpoint(ip: "10.0.3.3", port: 9090, pod: "cart-0", namespace: "shop", service: "cart"),
             method: "POST", path: "/cart.Cart/AddItem", status: 14, latencyMs: 2500,
             response: Message(trailers: [Header(name: "grpc-status", value: "14")]),
             http: HTTPInfo(version: "HTTP/2"),
             grpc: GRPCInfo(service: "cart.Cart", method: "AddItem", status: 14, message: "unavailable", requestMessages: 1,
                            responseMessages: 0)),
        Call(id: "a-4", ts: baseMilliseconds + 3000, node: "node-a", captureSource: .ebpf, proto: "dns", src: frontend,
             dst: Endpoint(ip: "10.96.0.10", port: 53, namespace: "kube-system", service: "kube-dns"),
             method: "A", path: "api.example.com", status: 0, latencyMs: 1.2,
             dns: DNSInfo(transactionID: 0x1234, questions: [.init(name: "api.example.com", type: "A")],
                          answers: [.init(name: "api.example.com", type: "A", data: "93.184.216.34", ttl: 60)], rcode: "NOERROR")),
        Call(id: "a-5", ts: baseMilliseconds + 4000, node: "node-a", captureSource: .ebpf, proto: "dns", src: frontend,
             dst: Endpoint(ip: "10.96.0.10", port: 53, namespace: "kube-system", service: "kube-dns"),
             method: "AAAA", path: "nope.invalid", status: 3, latencyMs: 0.8,
             dns: DNSInfo(transactionID: 7, questions: [.init(name: "nope.invalid", type: "AAAA")], rcode: "NXDOMAIN")),
        Call(id: "a-6", ts: baseMilliseconds + 5000, node: "node-a", captureSource: .ebpf, proto: "tls", src: frontend,
             dst: Endpoint(ip: "93.184.216.34", port: 443, dns: "example.com"),
             tls: TLSInfo(version: "TLS 1.3", sni: "example.com", alpn: ["h2", "http/1.1"], cipher: "TLS_AES_128_GCM_SHA256",
                          ja3: "771,4865", ja4: "t13d1516h2")),
        Call(id: "b-1", ts: baseMilliseconds + 6000, node: "node-b", captureSource: .pcap, proto: "http",
             src: Endpoint(ip: "10.0.0.1", port: 6000),
             dst: Endpoint(ip: "10.0.4.4", port: 80, pod: "web-1", namespace: "default", service: "frontend", node: "node-b", process: "nginx",
                           labels: ["app": "web", "team": "core"]),
             method: "GET", path: "/healthz", status: 200, latencyMs: 0.4, http: HTTPInfo(version: "HTTP/1.0")),
        Call(id: "b-2", ts: baseMilliseconds + 7000, node: "node-b", captureSource: .ebpf, proto: "http",
             src: Endpoint(ip: "10.0.4.8", port: 5000, pod: "前端-1", namespace: "ünï"),
             dst: Endpoint(ip: "10.0.4.4", port: 80, pod: "web-1", namespace: "default", node: "node-b"),
             method: "DELETE", path: "/api/v2/users/日本", query: "name=%E6%97%A5", status: 404, latencyMs: 12,
             request: Message(headers: [Header(name: "X-Name", value: "Zoë")]),
             flags: CallFlags(gap: true, truncated: true), http: HTTPInfo(version: "HTTP/1.1")),
        Call(id: "b-3", ts: baseMilliseconds + 8000, node: "node-b", captureSource: .ebpf, proto: "websocket",
             src: Endpoint(ip: "10.0.4.9", port: 5001, pod: "chat-1", namespace: "default"),
             dst: Endpoint(ip: "10.0.4.10", port: 80, pod: "chat-server", namespace: "default", service: "chat"),
             method: "GET", path: "/api/v1/slow", flags: CallFlags(noResponse: true),
             http: HTTPInfo(version: "HTTP/1.1", upgrade: "websocket")),
        Call(id: "b-4", ts: baseMilliseconds + 9000, node: "node-b", captureSource: .ebpf, proto: "graphql",
             src: Endpoint(ip: "10.0.4.9", port: 5002, pod: "chat-1", namespace: "default"),
             dst: Endpoint(ip: "10.0.4.11", port: 4000, pod: "gql-0", namespace: "default", service: "gql"),
             method: "POST", path: "/graphql", status: 200, latencyMs: 900,
             http: HTTPInfo(version: "HTTP/1.1", graphqlOperation: "GetCart")),
        Call(id: "b-5", ts: baseMilliseconds + 10000, node: "node-b", captureSource: .ebpf, proto: "redis",
             src: Endpoint(ip: "10.0.4.9", port: 5003), dst: Endpoint(ip: "10.0.5.1", port: 6379, service: "redis")),
        Call(id: "b-6", ts: baseMilliseconds + 11000, node: "node-b", captureSource: .ebpf, proto: "http",
             src: Endpoint(ip: "10.0.1.20", port: 41000, namespace: "shop", service: "frontend", dns: "frontend.shop.svc"),
             dst: Endpoint(ip: "10.0.2.9", port: 8080, pod: "checkout-5b", namespace: "shop", service: "checkout"),
             method: "PUT", path: "/API/V1/Checkout", status: 500, latencyMs: 1000, requestSize: 4096, responseSize: 64,
             request: Message(bodySize: 2048), response: Message(bodySize: 10), http: HTTPInfo(version: "HTTP/1.1")),
    ]

    static var allIDs: [String] { calls.map(\.id) }
}
