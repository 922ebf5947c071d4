import FathomModel

/// The stored form of a call: a compact binary record (format byte, then every field in declaration order; integers as
/// LEB128 varints, zig-zag when signed; strings as length + UTF-8; optionals behind a presence byte). Decoding one is
/// tens of times faster than JSONDecoder, which dominated full scans.
enum CallCodec {
    /// 2 added each endpoint's container id and resolution status; records of format 1 still decode.
    static let format: UInt8 = 2

    /// Appends the record of `call` to `out`.
    static func encode(_ call: Call, into out: inout [UInt8]) {
        var writer = Writer(out: out)
        out = []
        writer.byte(format)
        writer.string(call.id)
        writer.signed(call.ts)
        writer.string(call.node)
        writer.byte(sourceCode(call.captureSource))
        writer.string(call.proto)
        writer.endpoint(call.src)
        writer.endpoint(call.dst)
        writer.string(call.method)
        writer.string(call.path)
        writer.string(call.query)
        writer.signed(Int64(call.status))
        writer.double(call.latencyMs)
        writer.signed(Int64(call.requestSize))
        writer.signed(Int64(call.responseSize))
        writer.optional(call.request) { $0.message($1) }
        writer.optional(call.response) { $0.message($1) }
        writer.byte(UInt8(call.flags.bits))
        writer.optional(call.http) { writer, http in
            writer.string(http.version)
            writer.string(http.host)
            writer.string(http.statusText)
            writer.string(http.upgrade)
            writer.string(http.graphqlOperation)
        }
        writer.optional(call.grpc) { writer, grpc in
            writer.string(grpc.service)
            writer.string(grpc.method)
            writer.signed(Int64(grpc.status))
            writer.string(grpc.message)
            writer.signed(Int64(grpc.requestMessages))
            writer.signed(Int64(grpc.responseMessages))
        }
        writer.optional(call.dns) { writer, dns in
            writer.unsigned(UInt64(dns.transactionID))
            writer.unsigned(UInt64(dns.questions.count))
            for question in dns.questions {
                writer.string(question.name)
                writer.string(question.type)
            }
            writer.unsigned(UInt64(dns.answers.count))
            for answer in dns.answers {
                writer.string(answer.name)
                writer.string(answer.type)
                writer.string(answer.data)
                writer.unsigned(UInt64(answer.ttl))
            }
            writer.string(dns.rcode)
        }
        writer.optional(call.tls) { writer, tls in
            writer.string(tls.version)
            writer.string(tls.sni)
            writer.unsigned(UInt64(tls.alpn.count))
            for name in tls.alpn { writer.string(name) }
            for text in [tls.cipher, tls.ja3, tls.ja4] { writer.string(text) }
        }
        writer.string(call.connectionID)
        out = writer.out
    }

    /// A capture source's position in `CaptureSource.allCases`, which is how records name it (`allCases` builds an
    /// array on every use).
    static func sourceCode(_ source: CaptureSource) -> UInt8 {
        switch source {
        case .ebpf: 0
        case .ebpfTLS: 1
        case .pcap: 2
        }
    }

    /// The call a record holds; a damaged record is an error naming the byte offset, never a crash.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(StoreError) -> Call {
        var reader = Reader(bytes: bytes)
        let version = try reader.byte()
        guard version == 1 || version == format else { throw StoreError("stored call has unknown format \(version) at byte 0") }
        reader.format = version
        let id = try reader.string()
        let ts = try reader.signed()
        let node = try reader.string()
        let sourceIndex = Int(try reader.byte())
        guard sourceIndex < CaptureSource.allCases.count else { throw reader.damaged("capture source \(sourceIndex)") }
        let captureSource = CaptureSource.allCases[sourceIndex]
        let proto = try reader.string()
        let src = try reader.endpoint()
        let dst = try reader.endpoint()
        let method = try reader.string()
        let path = try reader.string()
        let query = try reader.string()
        let status = try reader.int()
        let latencyMs = try reader.double()
        let requestSize = try reader.int()
        let responseSize = try reader.int()
        let request = try reader.optional { (reader: inout Reader) throws(StoreError) in try reader.message() }
        let response = try reader.optional { (reader: inout Reader) throws(StoreError) in try reader.message() }
        let flags = CallFlags(bits: Int(try reader.byte()))
        let http = try reader.optional { (reader: inout Reader) throws(StoreError) in
            HTTPInfo(version: try reader.string(), host: try reader.string(), statusText: try reader.string(),
                     upgrade: try reader.string(), graphqlOperation: try reader.string())
        }
        let grpc = try reader.optional { (reader: inout Reader) throws(StoreError) in
            GRPCInfo(service: try reader.string(), method: try reader.string(), status: try reader.int(),
                     message: try reader.string(), requestMessages: try reader.int(), responseMessages: try reader.int())
        }
        let dns = try reader.optional { (reader: inout Reader) throws(StoreError) -> DNSInfo in
            let transactionID = try reader.unsigned()
            guard transactionID <= UInt64(UInt16.max) else { throw reader.damaged("DNS id \(transactionID)") }
            let questions = try reader.array { (reader: inout Reader) throws(StoreError) in
                DNSInfo.Question(name: try reader.string(), type: try reader.string())
            }
            let answers = try reader.array { (reader: inout Reader) throws(StoreError) -> DNSInfo.Answer in
                let (name, type, data) = (try reader.string(), try reader.string(), try reader.string())
                let ttl = try reader.unsigned()
                guard ttl <= UInt64(UInt32.max) else { throw reader.damaged("TTL \(ttl)") }
                return DNSInfo.Answer(name: name, type: type, data: data, ttl: UInt32(ttl))
            }
            return DNSInfo(transactionID: UInt16(transactionID), questions: questions, answers: answers, rcode: try reader.string())
        }
        let tls = try reader.optional { (reader: inout Reader) throws(StoreError) -> TLSInfo in
            let (version, sni) = (try reader.string(), try reader.string())
            let alpn = try reader.array { (reader: inout Reader) throws(StoreError) in try reader.string() }
            return TLSInfo(version: version, sni: sni, alpn: alpn, cipher: try reader.string(), ja3: try reader.string(),
                           ja4: try reader.string())
        }
        let connectionID = try reader.string()
        guard reader.position == bytes.count else { throw reader.damaged("\(bytes.count - reader.position) trailing bytes") }
        return Call(
            id: id, ts: ts, node: node, captureSource: captureSource, proto: proto, src: src, dst: dst, method: method,
            path: path, query: query, status: status, latencyMs: latencyMs, requestSize: requestSize,
            responseSize: responseSize, request: request, response: response, flags: flags, http: http, grpc: grpc, dns: dns,
            tls: tls, connectionID: connectionID)
    }

    struct Writer {
        var out: [UInt8]

        mutating func byte(_ value: UInt8) { out.append(value) }

        mutating func unsigned(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            out.append(UInt8(rest))
        }

        mutating func signed(_ value: Int64) { unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

        mutating func double(_ value: Double) {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }

        mutating func string(_ value: String) {
            unsigned(UInt64(value.utf8.count))
            out.append(contentsOf: value.utf8)
        }

        mutating func optionalString(_ value: String?) { optional(value) { $0.string($1) } }

        mutating func optional<T>(_ value: T?, _ write: (inout Writer, T) -> Void) {
            guard let value else { return byte(0) }
            byte(1)
            write(&self, value)
        }

        mutating func headers(_ headers: [Header]) {
            unsigned(UInt64(headers.count))
            // Through the buffer: subscripting the array copied each header (retaining both strings) to read a field.
            headers.withUnsafeBufferPointer { headers in
                for index in headers.indices {
                    string(headers[index].name)
                    string(headers[index].value)
                }
            }
        }

        mutating func message(_ message: Message) {
            headers(message.headers)
            headers(message.trailers)
            signed(Int64(message.bodySize))
            string(message.body)
            string(message.bodyEncoding)
            byte(message.bodyTruncated ? 1 : 0)
        }

        mutating func endpoint(_ end: Endpoint) {
            string(end.ip)
            signed(Int64(end.port))
            // One call per field: an array literal here cost an allocation per endpoint.
            optionalString(end.pod)
            optionalString(end.namespace)
            optionalString(end.service)
            optionalString(end.node)
            optionalString(end.container)
            optionalString(end.process)
            optional(end.pid) { $0.signed(Int64($1)) }
            optionalString(end.dns)
            optional(end.labels) { writer, labels in
                writer.unsigned(UInt64(labels.count))
                for (name, value) in labels.sorted(by: { $0.key < $1.key }) {
                    writer.string(name)
                    writer.string(value)
                }
            }
            optionalString(end.containerID)
            optionalString(end.resolution)
        }
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0
        /// The record's format byte: fields added by later formats are absent from earlier records.
        var format = CallCodec.format

        func damaged(_ what: String) -> StoreError { StoreError("stored call is damaged at byte \(position): \(what)") }

        mutating func byte() throws(StoreError) -> UInt8 {
            guard position < bytes.count else { throw damaged("unexpected end") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func unsigned() throws(StoreError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let next = try byte()
                guard shift < 64, shift < 63 || next <= 1 else { throw damaged("varint overflow") }
                value |= UInt64(next & 0x7f) << shift
                if next & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func signed() throws(StoreError) -> Int64 {
            let raw = try unsigned()
            return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
        }

        mutating func int() throws(StoreError) -> Int { Int(try signed()) }

        mutating func double() throws(StoreError) -> Double {
            guard bytes.count - position >= 8 else { throw damaged("unexpected end") }
            var bits: UInt64 = 0
            for index in 0..<8 { bits |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
            position += 8
            return Double(bitPattern: bits)
        }

        mutating func string() throws(StoreError) -> String {
            let length = try unsigned()
            guard length <= UInt64(bytes.count - position) else { throw damaged("string of \(length) bytes past the end") }
            let start = position
            position += Int(length)
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }

        mutating func optional<T>(_ read: (inout Reader) throws(StoreError) -> T) throws(StoreError) -> T? {
            switch try byte() {
            case 0: return nil
            case 1: return try read(&self)
            case let other: throw damaged("presence byte \(other)")
            }
        }

        mutating func optionalString() throws(StoreError) -> String? {
            try optional { (reader: inout Reader) throws(StoreError) in try reader.string() }
        }

        /// A counted sequence; the count is checked against the bytes left (every element takes at least one byte).
        mutating func array<T>(_ read: (inout Reader) throws(StoreError) -> T) throws(StoreError) -> [T] {
            let count = try unsigned()
            guard count <= UInt64(bytes.count - position) else { throw damaged("\(count) elements past the end") }
            var items: [T] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<count { items.append(try read(&self)) }
            return items
        }

        mutating func headers() throws(StoreError) -> [Header] {
            try array { (reader: inout Reader) throws(StoreError) in Header(name: try reader.string(), value: try reader.string()) }
        }

        mutating func message() throws(StoreError) -> Message {
            let headers = try headers()
            let trailers = try self.headers()
            let bodySize = try int()
            let body = try string()
            let encoding = try string()
            let truncated = try byte() != 0
            return Message(headers: headers, trailers: trailers, bodySize: bodySize, body: body, bodyEncoding: encoding,
                           bodyTruncated: truncated)
        }

        mutating func endpoint() throws(StoreError) -> Endpoint {
            let ip = try string()
            let port = try int()
            let (pod, namespace, service) = (try optionalString(), try optionalString(), try optionalString())
            let (node, container, process) = (try optionalString(), try optionalString(), try optionalString())
            let pid = try optional { (reader: inout Reader) throws(StoreError) in try reader.int() }
            let dns = try optionalString()
            let labels = try optional { (reader: inout Reader) throws(StoreError) -> [String: String] in
                let pairs = try reader.array { (reader: inout Reader) throws(StoreError) in (try reader.string(), try reader.string()) }
                return Dictionary(pairs, uniquingKeysWith: { first, _ in first })
            }
            var containerID: String?
            var resolution: String?
            if format >= 2 {
                containerID = try optionalString()
                resolution = try optionalString()
            }
            return Endpoint(ip: ip, port: port, pod: pod, namespace: namespace, service: service, node: node,
                            container: container, process: process, pid: pid, dns: dns, labels: labels,
                            containerID: containerID, resolution: resolution)
        }
    }
}
