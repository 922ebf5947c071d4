import FathomModel

/// Recognises GraphQL operations in HTTP request bodies.
enum GraphQL {
    /// The operation name, else its type ("query", "mutation", "subscription"), when the request is GraphQL.
    static func operation(path: String, contentType: String, body: Message) -> String? {
        guard !body.body.isEmpty, body.bodyEncoding == "utf8" else { return nil }
        let type = contentType.lowercased()
        if type.hasPrefix("application/graphql") { return describe(query: body.body) }
        guard type.contains("json") || path.lowercased().contains("graphql"),
            let query = jsonString(named: "query", in: body.body)
        else { return nil }
        if let name = jsonString(named: "operationName", in: body.body), !name.isEmpty { return name }
        return describe(query: query)
    }

    /// "query"/"mutation"/"subscription" and the name after it, from the query text.
    static func describe(query: String) -> String? {
        let trimmed = query.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        if trimmed.hasPrefix("{") { return "query" }
        for keyword in ["query", "mutation", "subscription"] where trimmed.hasPrefix(keyword) {
            let rest = trimmed.dropFirst(keyword.count).drop { $0 == " " || $0 == "\n" || $0 == "\t" }
            let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            return name.isEmpty ? keyword : String(name)
        }
        return nil
    }

    /// The string value of a top-level-looking `"key": "value"` pair (JSON escapes for quotes and newlines resolved).
    static func jsonString(named key: String, in json: String) -> String? {
        let bytes = Array(json.utf8)
        let needle = Array("\"\(key)\"".utf8)
        guard bytes.count > needle.count else { return nil }
        var index = 0
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], Array(bytes[index..<(index + needle.count)]) == needle {
                var cursor = index + needle.count
                while cursor < bytes.count, bytes[cursor] == 32 || bytes[cursor] == 9 || bytes[cursor] == 10 { cursor += 1 }
                guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: ":") else { index += 1; continue }
                cursor += 1
                while cursor < bytes.count, bytes[cursor] == 32 || bytes[cursor] == 9 || bytes[cursor] == 10 { cursor += 1 }
                guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "\"") else { return nil }
                cursor += 1
                var value: [UInt8] = []
                while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "\"") {
                    if bytes[cursor] == UInt8(ascii: "\\"), cursor + 1 < bytes.count {
                        cursor += 1
                        switch bytes[cursor] {
                        case UInt8(ascii: "n"): value.append(10)
                        case UInt8(ascii: "t"): value.append(9)
                        default: value.append(bytes[cursor])
                        }
                    } else {
                        value.append(bytes[cursor])
                    }
                    cursor += 1
                }
                return String(decoding: value, as: UTF8.self)
            }
            index += 1
        }
        return nil
    }
}
