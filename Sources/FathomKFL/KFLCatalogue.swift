import FathomModel

/// The field catalogue: every name KFL knows, with its aliases, resolved once.
public enum KFLCatalogue {
    /// Every field, KFL2 names first within each group.
    public static let fields: [KFLField] =
        coreFields + protocolFlags + httpFields + grpcFields + dnsFields + tlsFields
        + endpointFields(.src) + endpointFields(.dst) + kubernetesFields + flagFields + flowFields

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
        .string("id", group: "call", "Unique call id, \"<node>-<sequence>\".", example: "id == \"node-a-42\"") { $0.pointee.id },
        .string("node_id", aliases: ["node_name", "node"], group: "call", "Name of the node that captured the call.",
                example: "node_id == \"worker-1\"", indexed: KFLField.equality) { $0.pointee.node },
        KFLField("timestamp", aliases: ["ts"], .timestamp, group: "call", "Start of the request.",
                 example: "timestamp > now() - duration(\"5m\")", indexed: KFLField.ordered) {
            .timestamp($0.pointee.ts &* 1_000_000)
        },
        .int("elapsed_time", group: "call", "Response end minus request start, microseconds; 0 without a response.",
             example: "elapsed_time > 250000") { Int64(($0.pointee.latencyMs * 1000).rounded()) },
        .int("elapsedTime", group: "call", "KFL1: response end minus request start, whole milliseconds.",
             example: "elapsedTime > 250") { Int64($0.pointee.latencyMs) },
        .string("capture_source", group: "call", "How the bytes were captured: \"ebpf\", \"ebpf_tls\" or \"af_packet\".",
                example: "capture_source == \"ebpf_tls\"", indexed: KFLField.equality) { $0.pointee.captureSource.rawValue },
        .string("protocol", aliases: ["proto"], group: "call", "Dissector name: \"http\", \"http2\", \"grpc\", \"dns\", \"tls\", …",
                example: "protocol == \"grpc\"", indexed: KFLField.equality) { $0.pointee.proto },
        .string("connection_id", group: network, "The L4 connection the call travelled on (same id as flow records).",
                example: "connection_id == \"c-17\"") { $0.pointee.connectionID },
        .int("request_size", group: "call", "Request size on the wire, bytes.", example: "request_size > 1048576") {
            Int64($0.pointee.requestSize)
        },
        .int("response_size", group: "call", "Response size on the wire, bytes.", example: "response_size > 1048576") {
            Int64($0.pointee.responseSize)
        },
    ]

    /// Protocol flags: a flag for a protocol no dissector produces yet is simply false.
    private static let protocolFlags: [KFLField] = {
        // Protocol lists are short: comparing a few strings beats hashing the call's protocol name.
        var flags = protocolFlagSets.map { flag in
            KFLField.bool(flag.name, aliases: flag.aliases, group: "protocol", flag.summary, example: "\(flag.name) && status_code >= 500",
                          indexed: [.equal]) { call in flag.protocols.contains { utf8Equal($0, call.pointee.proto) } }
        }
        flags.append(.bool("tls", group: "protocol", "TLS: a handshake, or plaintext decrypted from a TLS library.",
                           example: "tls && src.name == \"checkout\"", indexed: [.equal]) {
            $0.pointee.proto == "tls" || $0.pointee.captureSource == .ebpfTLS
        })
        return flags
    }()

    /// Each flag (but `tls`) with the protocols it is true for.
    private static let protocolFlagSets: [(name: String, aliases: [String], protocols: [String], summary: String)] = [
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

    /// Flag name (KFL2) → protocols; `tls` lists only "tls" (its capture-source half is documented on `KFL.flagProtocols`).
    static let flagProtocols: [String: [String]] = {
        var table = Dictionary(uniqueKeysWithValues: protocolFlagSets.map { ($0.name, $0.protocols) })
        table["tls"] = ["tls"]
        return table
    }()

    static let udpProtocols = ["dns", "udp", "radius", "quic"]
    static let tcpProtocols = ["http", "http2", "grpc", "graphql", "websocket", "tls", "tcp", "redis",
                                            "kafka", "amqp", "mongodb", "mysql", "postgresql", "ldap", "diameter"]

    private static let httpFields: [KFLField] = [
        .string("method", aliases: ["request.method"], group: "http", "HTTP method; gRPC \"POST\"; DNS query type.",
                example: "method == \"POST\"", indexed: KFLField.equality) { $0.pointee.method },
        .string("path", aliases: ["request.path"], group: "http", "URL path without the query; gRPC \"/pkg.Service/Method\"; DNS name.",
                example: "path.startsWith(\"/api/\")", indexed: KFLField.equality.union([.prefix])) { $0.pointee.path },
        .string("url", aliases: ["request.url"], group: "http", "Path and query string as requested.",
                example: "url.contains(\"token=\")") { $0.pointee.query.isEmpty ? $0.pointee.path : $0.pointee.path + "?" + $0.pointee.query },
        .string("query_string", aliases: ["request.queryString"], group: "http", "Raw query string without the \"?\".",
                example: "query_string.contains(\"debug=1\")") { $0.pointee.query },
        KFLField("request.query", .map(.string, .string), group: "http", "Query parameters, decoded; the first of a name wins.",
                 example: "request.query.page == \"2\"",
                 lookup: { call, key in queryParameters(call.pointee.query).first { $0.name == key }.map { .string($0.value) } },
                 read: { call in
                     var entries: [KFLValue: KFLValue] = [:]
                     for pair in queryParameters(call.pointee.query) where entries[.string(pair.name)] == nil {
                         entries[.string(pair.name)] = .string(pair.value)
                     }
                     return .map(entries)
                 }),
        .int("status_code", aliases: ["response.status", "status"], group: "http",
             "HTTP status; gRPC grpc-status; DNS rcode number. 0 without a response.",
             example: "status_code >= 500", indexed: KFLField.ordered) { Int64($0.pointee.status) },
        .string("status_text", aliases: ["response.statusText"], group: "http", "HTTP reason phrase.",
                example: "status_text == \"Service Unavailable\"") { $0.pointee.http?.statusText ?? "" },
        .string("http_version", group: "http", "\"HTTP/1.0\", \"HTTP/1.1\" or \"HTTP/2\".",
                example: "http_version == \"HTTP/2\"") { $0.pointee.http?.version ?? "" },
        .string("host", aliases: ["request.host"], group: "http", "Host header or :authority.",
                example: "host.endsWith(\".internal\")") { $0.pointee.http?.host ?? "" },
        .string("http_upgrade", group: "http", "Upgrade the request asked for (\"websocket\", \"h2c\").",
                example: "http_upgrade == \"websocket\"") { $0.pointee.http?.upgrade ?? "" },
        .string("graphql_operation", group: "http", "GraphQL operation name or type.",
                example: "graphql_operation == \"GetCart\"") { $0.pointee.http?.graphqlOperation ?? "" },
        .headers("request.headers", aliases: ["request_headers"], group: "http", "Request headers, lowercase name → value (first wins).",
                 example: "request.headers[\"user-agent\"].contains(\"curl\")") { $0.pointee.request?.headers },
        .headers("response.headers", aliases: ["response_headers"], group: "http", "Response headers, lowercase name → value (first wins).",
                 example: "\"retry-after\" in response.headers") { $0.pointee.response?.headers },
        .headers("response.trailers", group: "http", "Response trailers (HTTP/2, gRPC, chunked), lowercase name → value.",
                 example: "response.trailers[\"grpc-status\"] == \"14\"") { $0.pointee.response?.trailers },
        .pairs("request.cookies", group: "http", "Cookies the request sent, name → value.",
               example: "\"session\" in request.cookies") { requestCookies($0) },
        .pairs("response.cookies", group: "http", "Cookies the response set (Set-Cookie), name → value.",
               example: "\"session\" in response.cookies") { responseCookies($0) },
        .int("request_body_size", aliases: ["request.bodySize"], group: "http", "Request body as seen on the wire, bytes.",
             example: "request_body_size > 0") { Int64($0.pointee.request?.bodySize ?? 0) },
        .int("response_body_size", aliases: ["response.bodySize"], group: "http", "Response body as seen on the wire, bytes.",
             example: "response_body_size > 1000000") { Int64($0.pointee.response?.bodySize ?? 0) },
        .string("request.body", aliases: ["request_body"], group: "http", "Decoded request body preview (UTF-8, or base64).",
                example: "request.body.contains(\"password\")") { $0.pointee.request?.body ?? "" },
        .string("response.body", aliases: ["response_body"], group: "http", "Decoded response body preview (UTF-8, or base64).",
                example: "response.body.matches(\"\\\\d{16}\")") { $0.pointee.response?.body ?? "" },
    ]

    private static let grpcFields: [KFLField] = [
        .string("grpc_service", group: "grpc", "gRPC service, \"package.Service\".", example: "grpc_service == \"cart.Cart\"") {
            $0.pointee.grpc?.service ?? ""
        },
        .string("grpc_method", group: "grpc", "gRPC method name.", example: "grpc_method == \"AddItem\"") { $0.pointee.grpc?.method ?? "" },
        .int("grpc_status", group: "grpc", "grpc-status code (0 OK, 14 UNAVAILABLE, …).", example: "grpc_status != 0") {
            Int64($0.pointee.grpc?.status ?? 0)
        },
        .string("grpc_message", group: "grpc", "grpc-message text.", example: "grpc_message.contains(\"deadline\")") {
            $0.pointee.grpc?.message ?? ""
        },
        .int("grpc_request_messages", group: "grpc", "Messages the client sent.", example: "grpc_request_messages > 1") {
            Int64($0.pointee.grpc?.requestMessages ?? 0)
        },
        .int("grpc_response_messages", group: "grpc", "Messages the server sent.", example: "grpc_response_messages > 1") {
            Int64($0.pointee.grpc?.responseMessages ?? 0)
        },
    ]

    private static let dnsFields: [KFLField] = [
        .strings("dns_questions", group: "dns", "Names asked.", example: "\"api.example.com\" in dns_questions") {
            $0.pointee.dns?.questions.map(\.name) ?? []
        },
        .strings("dns_question_types", group: "dns", "Record types asked (\"A\", \"AAAA\", …).", example: "\"AAAA\" in dns_question_types") {
            $0.pointee.dns?.questions.map(\.type) ?? []
        },
        .strings("dns_answers", group: "dns", "Answer data (addresses, CNAME targets, …).", example: "\"10.0.0.7\" in dns_answers") {
            $0.pointee.dns?.answers.map(\.data) ?? []
        },
        .strings("dns_answer_names", group: "dns", "Owner names of the answers.", example: "size(dns_answer_names) > 0") {
            $0.pointee.dns?.answers.map(\.name) ?? []
        },
        .strings("dns_answer_types", group: "dns", "Record types of the answers.", example: "\"CNAME\" in dns_answer_types") {
            $0.pointee.dns?.answers.map(\.type) ?? []
        },
        .bool("dns_request", group: "dns", "A DNS query was seen.", example: "dns_request && !dns_response") {
            $0.pointee.proto == "dns" && !$0.pointee.flags.noRequest
        },
        .bool("dns_response", group: "dns", "A DNS answer was seen.", example: "dns_response && dns_rcode == \"NXDOMAIN\"") {
            $0.pointee.proto == "dns" && !$0.pointee.flags.noResponse
        },
        .string("dns_rcode", group: "dns", "Response code name (\"NOERROR\", \"NXDOMAIN\", …).", example: "dns_rcode == \"NXDOMAIN\"") {
            $0.pointee.dns?.rcode ?? ""
        },
        .int("dns_transaction_id", group: "dns", "DNS message id.", example: "dns_transaction_id == 4660") {
            Int64($0.pointee.dns?.transactionID ?? 0)
        },
    ]

    private static let tlsFields: [KFLField] = [
        .string("tls_summary", group: "tls", "\"<version> sni=<name> alpn=<list> cipher=<name>\", empty without a handshake.",
                example: "tls_summary.contains(\"TLS 1.2\")") { call in
            guard let tls = call.pointee.tls else { return "" }
            return "\(tls.version) sni=\(tls.sni) alpn=\(tls.alpn.joined(separator: ",")) cipher=\(tls.cipher)"
        },
        KFLField("tls_info", .map(.string, .string), group: "tls", "Handshake details: version, sni, alpn, cipher, ja3, ja4.",
                 example: "tls_info[\"version\"] == \"TLS 1.3\"") { call in
            guard let tls = call.pointee.tls else { return .map([:]) }
            let pairs = [("version", tls.version), ("sni", tls.sni), ("alpn", tls.alpn.joined(separator: ",")),
                         ("cipher", tls.cipher), ("ja3", tls.ja3), ("ja4", tls.ja4)]
            return .map(Dictionary(uniqueKeysWithValues: pairs.map { (KFLValue.string($0.0), KFLValue.string($0.1)) }))
        },
        .string("tls_version", group: "tls", "Negotiated TLS version (\"TLS 1.3\").", example: "tls_version == \"TLS 1.0\"") {
            $0.pointee.tls?.version ?? ""
        },
        .string("tls_sni", aliases: ["sni"], group: "tls", "Server name the client asked for.", example: "tls_sni.endsWith(\".example.com\")") {
            $0.pointee.tls?.sni ?? ""
        },
        .strings("tls_alpn", group: "tls", "ALPN protocols offered or chosen.", example: "\"h2\" in tls_alpn") { $0.pointee.tls?.alpn ?? [] },
        .string("tls_cipher", group: "tls", "Negotiated cipher suite.", example: "tls_cipher.contains(\"CBC\")") { $0.pointee.tls?.cipher ?? "" },
        .string("tls_ja3", group: "tls", "JA3 fingerprint of the ClientHello.", example: "tls_ja3 == \"e7d705a3286e19ea42f587b344ee6865\"") {
            $0.pointee.tls?.ja3 ?? ""
        },
        .string("tls_ja4", group: "tls", "JA4 fingerprint of the ClientHello.", example: "tls_ja4.startsWith(\"t13d\")") { $0.pointee.tls?.ja4 ?? "" },
    ]

    private static let flagFields: [KFLField] = [
        .bool("gap", group: "quality", "Bytes of the stream were missing somewhere in this call.", example: "!gap") { $0.pointee.flags.gap },
        .bool("truncated", group: "quality", "A body or payload was cut.", example: "truncated") { $0.pointee.flags.truncated },
        .bool("no_response", group: "quality", "The request was seen but no response.", example: "no_response && http") {
            $0.pointee.flags.noResponse
        },
        .bool("no_request", group: "quality", "The response was seen without its request.", example: "no_request") {
            $0.pointee.flags.noRequest
        },
    ]
}
