/// The compact form of a call that lists show (Kubeshark's shape, so its users and prompts read it as they expect):
/// `{id, ts, proto, src:{ip,port,name,pod,ns,svc}, dst:{…}, method, path, status, latency_ms}`.
public struct CompactCall: Codable, Sendable, Equatable {
    public struct End: Codable, Sendable, Equatable {
        public var ip: String
        public var port: Int
        public var name: String
        public var pod: String?
        public var ns: String?
        public var svc: String?
    }

    public var id: String
    public var ts: Int64
    public var proto: String
    public var src: End
    public var dst: End
    public var method: String
    public var path: String
    public var status: Int
    public var latency_ms: Double
    /// Present only when something is missing or cut: "gap", "truncated", "no_response", "no_request".
    public var flags: [String]?
}

extension Endpoint {
    var compact: CompactCall.End {
        CompactCall.End(ip: ip, port: port, name: name, pod: pod, ns: namespace, svc: service)
    }
}

extension Call {
    public var compact: CompactCall {
        CompactCall(
            id: id, ts: ts, proto: proto, src: src.compact, dst: dst.compact, method: method, path: path, status: status,
            latency_ms: compactLatency, flags: flags.marks)
    }

    /// The latency in the compact form: rounded to the microsecond.
    var compactLatency: Double { (latencyMs * 1000).rounded() / 1000 }
}

extension CallFlags {
    /// The compact form's flags, nil when nothing is missing or cut.
    var marks: [String]? {
        guard gap || truncated || noResponse || noRequest else { return nil }
        var marks: [String] = []
        if gap { marks.append("gap") }
        if truncated { marks.append("truncated") }
        if noResponse { marks.append("no_response") }
        if noRequest { marks.append("no_request") }
        return marks
    }
}
