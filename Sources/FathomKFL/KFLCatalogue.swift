import FathomModel

/// The field catalogue: every name KFL knows, with its aliases, resolved once.
public enum KFLCatalogue {
    /// Every field, KFL2 names first within each group.
    public static let fields: [KFLField] =
        coreFields + protocolFlags + httpFields + grpcFields + dnsFields + tlsFields
        + endpointFields(.src) + endpointFields(.dst) + kubernetesFields + flagFields

    /// Field by KFL2 name or alias.
    static let byName: [String: KFLField] = {
        var table: [String: KFLField] = [:]
        for field in fields {
            for name in [field.name] + field.aliases where table[name] == nil { table[name] = field }
        }
        return table
    }()

    /// The field called `name` (KFL2 name or alias), if any.
    public static func field(named name: String) -> KFLField? { byName[name] }

    /// "`response.status` (alias of `status_code`)" or "`status_code`".
    static func describe(_ name: String) -> String {
        guard let field = byName[name], field.name != name else { return "`\(name)`" }
        return "`\(name)` (alias of `\(field.name)`)"
    }

    private static let network = "network"

    private static let coreFields: [KFLField] = [
        .string("id", group: "call", "Unique call id, \"<node>-<sequence>\".", example: "id == \"node-a-42\"") { $0.id },
        .string("node_id", aliases: ["node_name", "node"], group: "call", "Name of the node that captured the call.",
                example: "node_id == \"worker-1\"", indexed: KFLField.equality) { $0.node },
        KFLField("timestamp", aliases: ["ts"], .timestamp, group: "call", "Start of the request.",
                 example: "timestamp > now() - duration(\"5m\")", indexed: KFLField.ordered) {
            .timestamp($0.ts &* 1_000_000)
        },
        .int("elapsed_time", group: "call", "Response end minus request start, microseconds; 0 without a response.",
             example: "elapsed_time > 250000") { Int64(($0.latencyMs * 1000).rounded()) },
        .int("elapsedTime", group: "call", "KFL1: response end minus request start, whole milliseconds.",
             example: "elapsedTime > 250") { Int64($0.latencyMs) },
        .string("capture_source", group: "call", "How the bytes were captured: \"ebpf\", \"ebpf_tls\" or \"af_packet\".",
                example: "capture_source == \"ebpf_tls\"", indexed: KFLField.equality) { $0.captureSource.rawValue },
        .string("protocol", aliases: ["proto"], group: "call", "Dissector name: \"http\", \"http2\", \"grpc\", \"dns\", \"tls\", …",
                example: "protocol == \"grpc\"", indexed: KFLField.equality) { $0.proto },
        .string("connection_id", group: network, "The L4 connection the call travelled on (same id as flow records).",
                example: "connection_id == \"c-17\"") { $0.connectionID },
        .int("request_size", group: "call", "Request size on the wire, bytes.", example: "request_size > 1048576") {
            Int64($0.requestSize)
        },
        .int("response_size", group: "call", "Response size on the wire, bytes.", example: "response_size > 1048576") {
            Int64($0.responseSize)
        },
    ]

    /// Protocol flags: a flag for a protocol no dissector produces yet is simply false.
    private static let protocolFlags: [KFLField] = {
        let sets: [(name: String, aliases: [String], protocols: Set<String>, summary: String)] = [
            ("http", [], ["http", "http2", "grpc", "graphql", "websocket"], "HTTP/1.x or HTTP/2, including gRPC, GraphQL and WebSocket upgrades."),
            ("http2", [], ["http2", "grpc"], "HTTP/2, including gRPC."),
            ("grpc", [], ["grpc"], "gRPC."),
            ("graphql", [], ["graphql"], "GraphQL over HTTP."),
            ("websocket", ["ws"], ["websocket"], "WebSocket."),
            ("dns", [], ["dns"], "DNS."),
            ("tcp", [], tcpProtocols, "Carried over TCP (every stream protocol)."),
            ("udp", [], udpProtocols, "Carried over UDP (DNS, …)."),
        ] + ["redis", "kafka", "amqp", "mongodb", "mysql", "postgresql", "ldap", "radius", "diameter", "icmp", "sctp"]
            .map { ($0, [], [$0], "\($0) (no dissector yet: always false).") }
        var flags = sets.map { flag in
            KFLField.bool(flag.name, aliases: flag.aliases, group: "protocol", flag.summary, example: "\(flag.name) && status_code >= 500",
                          indexed: [.equal]) { flag.protocols.contains($0.proto) }
        }
        flags.append(.bool("tls", group: "protocol", "TLS: a handshake, or plaintext decrypted from a TLS library.",
                           example: "tls && src.name == \"checkout\"", indexed: [.equal]) {
            $0.proto == "tls" || $0.captureSource == .ebpfTLS
        })
        return flags
    }()

    static let udpProtocols: Set<String> = ["dns", "udp", "radius", "quic"]
    static let tcpProtocols: Set<String> = ["http", "http2", "grpc", "graphql", "websocket", "tls", "tcp", "redis",
                                            "kafka", "amqp", "mongodb", "mysql", "postgresql", "ldap", "diameter"]

    private static let httpFields: [KFLField] = [
        .string("method", aliases: ["request.method"], group: "http", "HTTP method; gRPC \"POST\"; DNS query type.",
                example: "method == \"POST\"", indexed: KFLField.equality) { $0.method },
        .string("path", aliases: ["request.path"], group: "http", "URL path without the query; gRPC \"/pkg.Service/Method\"; DNS name.",
                example: "path.startsWith(\"/api/\")", indexed: KFLField.equality.union([.prefix])) { $0.path },
        .string("url", aliases: ["request.url"], group: "http", "Path and query string as requested.",
                example: "url.contains(\"token=\")") { $0.query.isEmpty ? $0.path : $0.path + "?" + $0.query },
        .string("query_string", aliases: ["request.queryString"], group: "http", "Raw query string without the \"?\".",
                example: "query_string.contains(\"debug=1\")") { $0.query },
        KFLField("request.query", .map(.string, .string), group: "http", "Query parameters, decoded; the first of a name wins.",
                 example: "request.query.page == \"2\"",
                 lookup: { call, key in queryParameters(call.query).first { $0.name == key }.map { .string($0.value) } },
                 read: { call in
                     var entries: [KFLValue: KFLValue] = [:]
                     for pair in queryParameters(call.query) where entries[.string(pair.name)] == nil {
                         entries[.string(pair.name)] = .string(pair.value)
                     }
                     return .map(entries)
                 }),
        .int("status_code", aliases: ["response.status", "status"], group: "http",
             "HTTP status; gRPC grpc-status; DNS rcode number. 0 without a response.",
             example: "status_code >= 500", indexed: KFLField.ordered) { Int64($0.status) },
        .string("status_text", aliases: ["response.statusText"], group: "http", "HTTP reason phrase.",
                example: "status_text == \"Service Unavailable\"") { $0.http?.statusText ?? "" },
        .string("http_version", group: "http", "\"HTTP/1.0\", \"HTTP/1.1\" or \"HTTP/2\".",
                example: "http_version == \"HTTP/2\"") { $0.http?.version ?? "" },
        .string("host", aliases: ["request.host"], group: "http", "Host header or :authority.",
                example: "host.endsWith(\".internal\")") { $0.http?.host ?? "" },
        .string("http_upgrade", group: "http", "Upgrade the request asked for (\"websocket\", \"h2c\").",
                example: "http_upgrade == \"websocket\"") { $0.http?.upgrade ?? "" },
        .string("graphql_operation", group: "http", "GraphQL operation name or type.",
                example: "graphql_operation == \"GetCart\"") { $0.http?.graphqlOperation ?? "" },
        .pairs("request.headers", aliases: ["request_headers"], group: "http", "Request headers, lowercase name → value (first wins).",
               example: "request.headers[\"user-agent\"].contains(\"curl\")", caseInsensitive: true) {
            headerPairs($0.request?.headers)
        },
        .pairs("response.headers", aliases: ["response_headers"], group: "http", "Response headers, lowercase name → value (first wins).",
               example: "\"retry-after\" in response.headers", caseInsensitive: true) { headerPairs($0.response?.headers) },
        .pairs("response.trailers", group: "http", "Response trailers (HTTP/2, gRPC, chunked), lowercase name → value.",
               example: "response.trailers[\"grpc-status\"] == \"14\"", caseInsensitive: true) {
            headerPairs($0.response?.trailers)
        },
        .pairs("request.cookies", group: "http", "Cookies the request sent, name → value.",
               example: "\"session\" in request.cookies", caseInsensitive: false) { requestCookies($0) },
        .pairs("response.cookies", group: "http", "Cookies the response set (Set-Cookie), name → value.",
               example: "\"session\" in response.cookies", caseInsensitive: false) { responseCookies($0) },
        .int("request_body_size", aliases: ["request.bodySize"], group: "http", "Request body as seen on the wire, bytes.",
             example: "request_body_size > 0") { Int64($0.request?.bodySize ?? 0) },
        .int("response_body_size", aliases: ["response.bodySize"], group: "http", "Response body as seen on the wire, bytes.",
             example: "response_body_size > 1000000") { Int64($0.response?.bodySize ?? 0) },
        .string("request.body", aliases: ["request_body"], group: "http", "Decoded request body preview (UTF-8, or base64).",
                example: "request.body.contains(\"password\")") { $0.request?.body ?? "" },
        .string("response.body", aliases: ["response_body"], group: "http", "Decoded response body preview (UTF-8, or base64).",
                example: "response.body.matches(\"\\\\d{16}\")") { $0.response?.body ?? "" },
    ]

    private static let grpcFields: [KFLField] = [
        .string("grpc_service", group: "grpc", "gRPC service, \"package.Service\".", example: "grpc_service == \"cart.Cart\"") {
            $0.grpc?.service ?? ""
        },
        .string("grpc_method", group: "grpc", "gRPC method name.", example: "grpc_method == \"AddItem\"") { $0.grpc?.method ?? "" },
        .int("grpc_status", group: "grpc", "grpc-status code (0 OK, 14 UNAVAILABLE, …).", example: "grpc_status != 0") {
            Int64($0.grpc?.status ?? 0)
        },
        .string("grpc_message", group: "grpc", "grpc-message text.", example: "grpc_message.contains(\"deadline\")") {
            $0.grpc?.message ?? ""
        },
        .int("grpc_request_messages", group: "grpc", "Messages the client sent.", example: "grpc_request_messages > 1") {
            Int64($0.grpc?.requestMessages ?? 0)
        },
        .int("grpc_response_messages", group: "grpc", "Messages the server sent.", example: "grpc_response_messages > 1") {
            Int64($0.grpc?.responseMessages ?? 0)
        },
    ]

    private static let dnsFields: [KFLField] = [
        .strings("dns_questions", group: "dns", "Names asked.", example: "\"api.example.com\" in dns_questions") {
            $0.dns?.questions.map(\.name) ?? []
        },
        .strings("dns_question_types", group: "dns", "Record types asked (\"A\", \"AAAA\", …).", example: "\"AAAA\" in dns_question_types") {
            $0.dns?.questions.map(\.type) ?? []
        },
        .strings("dns_answers", group: "dns", "Answer data (addresses, CNAME targets, …).", example: "\"10.0.0.7\" in dns_answers") {
            $0.dns?.answers.map(\.data) ?? []
        },
        .strings("dns_answer_names", group: "dns", "Owner names of the answers.", example: "size(dns_answer_names) > 0") {
            $0.dns?.answers.map(\.name) ?? []
        },
        .strings("dns_answer_types", group: "dns", "Record types of the answers.", example: "\"CNAME\" in dns_answer_types") {
            $0.dns?.answers.map(\.type) ?? []
        },
        .bool("dns_request", group: "dns", "A DNS query was seen.", example: "dns_request && !dns_response") {
            $0.proto == "dns" && !$0.flags.noRequest
        },
        .bool("dns_response", group: "dns", "A DNS answer was seen.", example: "dns_response && dns_rcode == \"NXDOMAIN\"") {
            $0.proto == "dns" && !$0.flags.noResponse
        },
        .string("dns_rcode", group: "dns", "Response code name (\"NOERROR\", \"NXDOMAIN\", …).", example: "dns_rcode == \"NXDOMAIN\"") {
            $0.dns?.rcode ?? ""
        },
        .int("dns_transaction_id", group: "dns", "DNS message id.", example: "dns_transaction_id == 4660") {
            Int64($0.dns?.transactionID ?? 0)
        },
    ]

    private static let tlsFields: [KFLField] = [
        .string("tls_summary", group: "tls", "\"<version> sni=<name> alpn=<list> cipher=<name>\", empty without a handshake.",
                example: "tls_summary.contains(\"TLS 1.2\")") { call in
            guard let tls = call.tls else { return "" }
            return "\(tls.version) sni=\(tls.sni) alpn=\(tls.alpn.joined(separator: ",")) cipher=\(tls.cipher)"
        },
        KFLField("tls_info", .map(.string, .string), group: "tls", "Handshake details: version, sni, alpn, cipher, ja3, ja4.",
                 example: "tls_info[\"version\"] == \"TLS 1.3\"") { call in
            guard let tls = call.tls else { return .map([:]) }
            let pairs = [("version", tls.version), ("sni", tls.sni), ("alpn", tls.alpn.joined(separator: ",")),
                         ("cipher", tls.cipher), ("ja3", tls.ja3), ("ja4", tls.ja4)]
            return .map(Dictionary(uniqueKeysWithValues: pairs.map { (KFLValue.string($0.0), KFLValue.string($0.1)) }))
        },
        .string("tls_version", group: "tls", "Negotiated TLS version (\"TLS 1.3\").", example: "tls_version == \"TLS 1.0\"") {
            $0.tls?.version ?? ""
        },
        .string("tls_sni", aliases: ["sni"], group: "tls", "Server name the client asked for.", example: "tls_sni.endsWith(\".example.com\")") {
            $0.tls?.sni ?? ""
        },
        .strings("tls_alpn", group: "tls", "ALPN protocols offered or chosen.", example: "\"h2\" in tls_alpn") { $0.tls?.alpn ?? [] },
        .string("tls_cipher", group: "tls", "Negotiated cipher suite.", example: "tls_cipher.contains(\"CBC\")") { $0.tls?.cipher ?? "" },
        .string("tls_ja3", group: "tls", "JA3 fingerprint of the ClientHello.", example: "tls_ja3 == \"e7d705a3286e19ea42f587b344ee6865\"") {
            $0.tls?.ja3 ?? ""
        },
        .string("tls_ja4", group: "tls", "JA4 fingerprint of the ClientHello.", example: "tls_ja4.startsWith(\"t13d\")") { $0.tls?.ja4 ?? "" },
    ]

    private static let flagFields: [KFLField] = [
        .bool("gap", group: "quality", "Bytes of the stream were missing somewhere in this call.", example: "!gap") { $0.flags.gap },
        .bool("truncated", group: "quality", "A body or payload was cut.", example: "truncated") { $0.flags.truncated },
        .bool("no_response", group: "quality", "The request was seen but no response.", example: "no_response && http") {
            $0.flags.noResponse
        },
        .bool("no_request", group: "quality", "The response was seen without its request.", example: "no_request") {
            $0.flags.noRequest
        },
    ]
}
