import FathomModel

extension KFLCatalogue {
    enum Side: String, Sendable { case src, dst }

    /// Network, Kubernetes, process and DNS-resolution fields of one end of the call (`src.*` or `dst.*`).
    static func endpointFields(_ side: Side) -> [KFLField] {
        let prefix = side.rawValue
        let other = side == .src ? "source" : "destination"
        @Sendable func endpoint(_ call: UnsafePointer<Call>) -> Endpoint { side == .src ? call.pointee.src : call.pointee.dst }
        return [
            .string("\(prefix).ip", group: "network", "IP address of the \(other).", example: "\(prefix).ip == \"10.0.0.7\"") {
                side == .src ? $0.pointee.src.ip : $0.pointee.dst.ip
            },
            .int("\(prefix).port", group: "network", "Port of the \(other).", example: "\(prefix).port == 8080") {
                Int64(side == .src ? $0.pointee.src.port : $0.pointee.dst.port)
            },
            .string("\(prefix).name", group: "kubernetes", "Best name of the \(other): pod, else service, DNS name, process, IP.",
                    example: "\(prefix).name == \"checkout\"", indexed: KFLField.equality) {
                side == .src ? $0.pointee.src.name : $0.pointee.dst.name
            },
            .string("\(prefix).pod.name", aliases: ["\(prefix).pod"], group: "kubernetes", "Pod of the \(other).",
                    example: "\(prefix).pod.name.startsWith(\"frontend-\")", indexed: KFLField.equality) {
                (side == .src ? $0.pointee.src.pod : $0.pointee.dst.pod) ?? ""
            },
            .string("\(prefix).pod.namespace", group: "kubernetes", "Namespace of the \(other)'s pod (empty without a pod).",
                    example: "\(prefix).pod.namespace == \"shop\"") { call in
                let end = endpoint(call)
                return end.pod == nil ? "" : end.namespace ?? ""
            },
            .string("\(prefix).service.name", aliases: ["\(prefix).svc", "\(prefix).service"], group: "kubernetes",
                    "Service of the \(other).", example: "\(prefix).service.name == \"frontend\"", indexed: KFLField.equality) {
                (side == .src ? $0.pointee.src.service : $0.pointee.dst.service) ?? ""
            },
            .string("\(prefix).service.namespace", group: "kubernetes", "Namespace of the \(other)'s service (empty without a service).",
                    example: "\(prefix).service.namespace == \"shop\"") { call in
                let end = endpoint(call)
                return end.service == nil ? "" : end.namespace ?? ""
            },
            .string("\(prefix).namespace", aliases: ["\(prefix).ns"], group: "kubernetes", "Namespace of the \(other).",
                    example: "\(prefix).namespace == \"kube-system\"", indexed: KFLField.equality) {
                (side == .src ? $0.pointee.src.namespace : $0.pointee.dst.namespace) ?? ""
            },
            .string("\(prefix).node", group: "kubernetes", "Node the \(other) runs on.", example: "\(prefix).node == \"worker-2\"") {
                (side == .src ? $0.pointee.src.node : $0.pointee.dst.node) ?? ""
            },
            .string("\(prefix).container", group: "kubernetes", "Container of the \(other).", example: "\(prefix).container == \"app\"") {
                (side == .src ? $0.pointee.src.container : $0.pointee.dst.container) ?? ""
            },
            .string("\(prefix).process", group: "process", "Process name of the \(other), when local.", example: "\(prefix).process == \"curl\"") {
                (side == .src ? $0.pointee.src.process : $0.pointee.dst.process) ?? ""
            },
            .int("\(prefix).pid", group: "process", "Process id of the \(other), when local; 0 when unknown.", example: "\(prefix).pid == 4242") {
                Int64((side == .src ? $0.pointee.src.pid : $0.pointee.dst.pid) ?? 0)
            },
            .string("\(prefix).dns", group: "dns resolution", "Name learned from DNS answers for the \(other)'s IP.",
                    example: "\(prefix).dns.endsWith(\".amazonaws.com\")") {
                (side == .src ? $0.pointee.src.dns : $0.pointee.dst.dns) ?? ""
            },
            .pairs("\(prefix).labels", group: "kubernetes", "Kubernetes labels of the \(other)'s pod.",
                   example: "\(prefix).labels[\"app\"] == \"web\"") { call in
                labelPairs(endpoint(call).labels)
            },
        ]
    }

    static let kubernetesFields: [KFLField] = [
        .strings("namespaces", group: "kubernetes", "Namespaces of both ends (empty names left out).", example: "\"shop\" in namespaces") {
            distinctNonEmpty([$0.pointee.src.namespace, $0.pointee.dst.namespace])
        },
        .strings("pods", group: "kubernetes", "Pods of both ends.", example: "\"db-0\" in pods") {
            distinctNonEmpty([$0.pointee.src.pod, $0.pointee.dst.pod])
        },
        .strings("services", group: "kubernetes", "Services of both ends.", example: "\"redis\" in services") {
            distinctNonEmpty([$0.pointee.src.service, $0.pointee.dst.service])
        },
        .pairs("local_labels", group: "kubernetes", "Labels of the pod on the capturing node.",
               example: "local_labels[\"team\"] == \"payments\"") { labelPairs(localEndpoint($0).labels) },
        .pairs("remote_labels", group: "kubernetes", "Labels of the peer of the pod on the capturing node.",
               example: "remote_labels[\"app\"] == \"postgres\"") { labelPairs(remoteEndpoint($0).labels) },
        .string("local_process_name", group: "process", "Process on the capturing node that sent or received the call.",
                example: "local_process_name == \"java\"") { localEndpoint($0).process ?? "" },
        .string("remote_process_name", group: "process", "Process at the other end, when it is local too.",
                example: "remote_process_name == \"nginx\"") { remoteEndpoint($0).process ?? "" },
    ]

    /// The end that lives on the capturing node: the destination when only it does, else the source.
    static func localEndpoint(_ call: UnsafePointer<Call>) -> Endpoint {
        call.pointee.dst.node == call.pointee.node && call.pointee.src.node != call.pointee.node ? call.pointee.dst : call.pointee.src
    }

    static func remoteEndpoint(_ call: UnsafePointer<Call>) -> Endpoint {
        call.pointee.dst.node == call.pointee.node && call.pointee.src.node != call.pointee.node ? call.pointee.src : call.pointee.dst
    }

    private static func distinctNonEmpty(_ names: [String?]) -> [String] {
        var result: [String] = []
        for case let name? in names where !name.isEmpty && !result.contains(name) { result.append(name) }
        return result
    }

    private static func labelPairs(_ labels: [String: String]?) -> [(name: String, value: String)] {
        (labels ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// `Cookie: a=1; b=2` headers of the request.
func requestCookies(_ call: UnsafePointer<Call>) -> [(name: String, value: String)] {
    (call.pointee.request?.headers ?? []).filter { asciiEqualIgnoringCase($0.name, "cookie") }.flatMap { header in
        header.value.split(separator: ";").compactMap { cookiePair(Substring($0)) }
    }
}

/// `Set-Cookie: name=value; Path=/` headers of the response: only the leading pair of each counts.
func responseCookies(_ call: UnsafePointer<Call>) -> [(name: String, value: String)] {
    (call.pointee.response?.headers ?? []).filter { asciiEqualIgnoringCase($0.name, "set-cookie") }.compactMap { header in
        header.value.split(separator: ";", maxSplits: 1).first.flatMap { cookiePair($0) }
    }
}

private func cookiePair(_ text: Substring) -> (name: String, value: String)? {
    let trimmed = text.drop { $0 == " " }
    guard let equals = trimmed.firstIndex(of: "="), equals != trimmed.startIndex else { return nil }
    return (String(trimmed[..<equals]), String(trimmed[trimmed.index(after: equals)...]))
}

/// `a=1&b=x%20y` → [("a", "1"), ("b", "x y")]; `+` reads as a space.
func queryParameters(_ query: String) -> [(name: String, value: String)] {
    guard !query.isEmpty else { return [] }
    return query.split(separator: "&").map { part in
        let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return (percentDecoded(pieces[0]), pieces.count > 1 ? percentDecoded(pieces[1]) : "")
    }
}

private func percentDecoded(_ text: Substring) -> String {
    guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
    var bytes: [UInt8] = []
    var utf8 = Array(text.utf8)[...]
    func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else if byte == UInt8(ascii: "%"), utf8.count >= 2, let high = hexValue(utf8[utf8.startIndex]),
                  let low = hexValue(utf8[utf8.startIndex + 1]) {
            bytes.append(high << 4 | low)
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
