/// One API call (a request and its response) or one standalone message, as the dissectors produce it and every
/// query, API answer and MCP result reads it. The JSON of a call is the contract: field names are the wire names.
public struct Call: Codable, Sendable, Equatable {
    /// Stable and unique across nodes: "<node>-<sequence>".
    public var id: String
    /// Start of the request, milliseconds since the Unix epoch.
    public var ts: Int64
    public var node: String
    public var captureSource: CaptureSource
    /// "http", "http2", "grpc", "dns", "tls", "websocket", "graphql", … (the dissector's name).
    public var proto: String
    public var src: Endpoint
    public var dst: Endpoint
    /// HTTP method, gRPC "POST", DNS query type ("A", "AAAA", …).
    public var method: String
    /// URL path without the query string; gRPC "/package.Service/Method"; DNS the name asked.
    public var path: String
    /// Raw query string without the "?", empty when none.
    public var query: String
    /// HTTP status; gRPC grpc-status; DNS rcode. 0 when there was no response.
    public var status: Int
    /// Response end minus request start, milliseconds; 0 when there was no response.
    public var latencyMs: Double
    public var requestSize: Int
    public var responseSize: Int
    public var request: Message?
    public var response: Message?
    public var flags: CallFlags
    public var http: HTTPInfo?
    public var grpc: GRPCInfo?
    public var dns: DNSInfo?
    public var tls: TLSInfo?
    /// Identifies the L4 connection the call travelled on (the same id the flow records use).
    public var connectionID: String
    /// Only on the call-shaped view of a flow (`Flow.filterView`) that KFL flow filters read; nil on calls.
    public var l4: FlowFacts?

    public init(
        id: String, ts: Int64, node: String, captureSource: CaptureSource, proto: String, src: Endpoint,
        dst: Endpoint, method: String = "", path: String = "", query: String = "", status: Int = 0,
        latencyMs: Double = 0, requestSize: Int = 0, responseSize: Int = 0, request: Message? = nil,
        response: Message? = nil, flags: CallFlags = CallFlags(), http: HTTPInfo? = nil, grpc: GRPCInfo? = nil,
        dns: DNSInfo? = nil, tls: TLSInfo? = nil, connectionID: String = ""
    ) {
        self.id = id
        self.ts = ts
        self.node = node
        self.captureSource = captureSource
        self.proto = proto
        self.src = src
        self.dst = dst
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.latencyMs = latencyMs
        self.requestSize = requestSize
        self.responseSize = responseSize
        self.request = request
        self.response = response
        self.flags = flags
        self.http = http
        self.grpc = grpc
        self.dns = dns
        self.tls = tls
        self.connectionID = connectionID
    }
}

/// One end of a call or flow. Identity fields stay nil until attribution knows them.
public struct Endpoint: Codable, Sendable, Equatable, Hashable {
    public var ip: String
    public var port: Int
    public var pod: String?
    public var namespace: String?
    public var service: String?
    public var node: String?
    public var container: String?
    public var process: String?
    public var pid: Int?
    /// A name learned from DNS answers for this IP.
    public var dns: String?
    public var labels: [String: String]?
    /// The runtime's container id (64 hex, no `containerd://` scheme) when the end is a local container.
    public var containerID: String?
    /// How attribution named this end: "pod", "service", "node", "host", "dns", "unknown", "not-synced" (the
    /// Kubernetes table was not listed yet) or "no-cluster" (no Kubernetes API configured); nil before attribution.
    public var resolution: String?

    public init(
        ip: String, port: Int, pod: String? = nil, namespace: String? = nil, service: String? = nil,
        node: String? = nil, container: String? = nil, process: String? = nil, pid: Int? = nil, dns: String? = nil,
        labels: [String: String]? = nil, containerID: String? = nil, resolution: String? = nil
    ) {
        self.ip = ip
        self.port = port
        self.pod = pod
        self.namespace = namespace
        self.service = service
        self.node = node
        self.container = container
        self.process = process
        self.pid = pid
        self.dns = dns
        self.labels = labels
        self.containerID = containerID
        self.resolution = resolution
    }

    /// The best human name: pod, then service, then DNS name, then process, then the IP (Kubeshark's order).
    public var name: String { pod ?? service ?? dns ?? process ?? ip }
}

/// A header as it appeared on the wire; order and duplicates are kept.
public struct Header: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request or response: headers and a preview of the body.
public struct Message: Codable, Sendable, Equatable {
    public var headers: [Header]
    /// Trailers (HTTP/2, gRPC, chunked HTTP/1.1).
    public var trailers: [Header]
    /// Body as seen on the wire before decoding, in bytes.
    public var bodySize: Int
    /// Decoded (decompressed) body preview: UTF-8 text when it decodes, else base64 with `bodyEncoding` "base64".
    public var body: String
    public var bodyEncoding: String
    /// The preview was cut at the configured cap.
    public var bodyTruncated: Bool

    public init(
        headers: [Header] = [], trailers: [Header] = [], bodySize: Int = 0, body: String = "",
        bodyEncoding: String = "utf8", bodyTruncated: Bool = false
    ) {
        self.headers = headers
        self.trailers = trailers
        self.bodySize = bodySize
        self.body = body
        self.bodyEncoding = bodyEncoding
        self.bodyTruncated = bodyTruncated
    }

    /// The first header of that name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsIgnoringCase(name) }?.value
    }
}

extension String {
    fileprivate func equalsIgnoringCase(_ other: String) -> Bool {
        self.utf8.count == other.utf8.count && self.lowercased() == other.lowercased()
    }
}

/// What is known to be missing or cut on this call; never silently dropped.
public struct CallFlags: Codable, Sendable, Equatable {
    /// Bytes of the stream were missing (capture loss or reassembly gap) somewhere in this call.
    public var gap: Bool
    /// A body or payload was cut (snap length, TLS chunk cap, preview cap).
    public var truncated: Bool
    /// The request was seen but no response (connection closed, timed out, capture ended).
    public var noResponse: Bool
    /// The response was seen without its request (capture started mid-stream).
    public var noRequest: Bool

    public init(gap: Bool = false, truncated: Bool = false, noResponse: Bool = false, noRequest: Bool = false) {
        self.gap = gap
        self.truncated = truncated
        self.noResponse = noResponse
        self.noRequest = noRequest
    }
}

public struct HTTPInfo: Codable, Sendable, Equatable {
    /// "HTTP/1.0", "HTTP/1.1", "HTTP/2".
    public var version: String
    public var host: String
    public var statusText: String
    /// The request was an upgrade ("websocket", "h2c").
    public var upgrade: String
    /// The body was recognised as a GraphQL operation: its operation name or type.
    public var graphqlOperation: String

    public init(version: String, host: String = "", statusText: String = "", upgrade: String = "", graphqlOperation: String = "") {
        self.version = version
        self.host = host
        self.statusText = statusText
        self.upgrade = upgrade
        self.graphqlOperation = graphqlOperation
    }
}

public struct GRPCInfo: Codable, Sendable, Equatable {
    public var service: String
    public var method: String
    public var status: Int
    public var message: String
    public var requestMessages: Int
    public var responseMessages: Int

    public init(service: String, method: String, status: Int = 0, message: String = "", requestMessages: Int = 0, responseMessages: Int = 0) {
        self.service = service
        self.method = method
        self.status = status
        self.message = message
        self.requestMessages = requestMessages
        self.responseMessages = responseMessages
    }
}

public struct DNSInfo: Codable, Sendable, Equatable {
    public struct Question: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public init(name: String, type: String) {
            self.name = name
            self.type = type
        }
    }
    public struct Answer: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var data: String
        public var ttl: UInt32
        public init(name: String, type: String, data: String, ttl: UInt32) {
            self.name = name
            self.type = type
            self.data = data
            self.ttl = ttl
        }
    }
    public var transactionID: UInt16
    public var questions: [Question]
    public var answers: [Answer]
    /// "NOERROR", "NXDOMAIN", …
    public var rcode: String

    public init(transactionID: UInt16, questions: [Question] = [], answers: [Answer] = [], rcode: String = "") {
        self.transactionID = transactionID
        self.questions = questions
        self.answers = answers
        self.rcode = rcode
    }
}

public struct TLSInfo: Codable, Sendable, Equatable {
    /// Negotiated version ("TLS 1.3"), or the ClientHello's when no ServerHello was seen.
    public var version: String
    public var sni: String
    public var alpn: [String]
    public var cipher: String
    public var ja3: String
    public var ja4: String

    public init(version: String, sni: String = "", alpn: [String] = [], cipher: String = "", ja3: String = "", ja4: String = "") {
        self.version = version
        self.sni = sni
        self.alpn = alpn
        self.cipher = cipher
        self.ja3 = ja3
        self.ja4 = ja4
    }
}
