import Foundation

/// Just enough YAML for kubeconfig files: block mappings, block sequences of mappings or scalars, plain and quoted
/// scalars, comments, and flow JSON documents (JSON is YAML). Anchors, multi-line scalars and tags are not supported.
enum MiniYAML {
    indirect enum Value: Equatable {
        case scalar(String)
        case map([(String, Value)])
        case list([Value])

        static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case let (.scalar(x), .scalar(y)): return x == y
            case let (.list(x), .list(y)): return x == y
            case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: return false
            }
        }

        subscript(key: String) -> Value? {
            if case let .map(pairs) = self { return pairs.first { $0.0 == key }?.1 }
            return nil
        }
        var string: String? { if case let .scalar(s) = self { return s } else { return nil } }
        var list: [Value]? { if case let .list(l) = self { return l } else { return nil } }
    }

    struct Line {
        var indent: Int
        var text: Substring
        var number: Int
    }

    static func parse(_ text: String) throws -> Value {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) else {
                throw KubeConfigError("kubeconfig: invalid JSON")
            }
            return fromJSON(object)
        }
        var lines: [Line] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = stripComment(raw.hasSuffix("\r") ? raw.dropLast() : raw)
            let indent = content.prefix { $0 == " " }.count
            let body = content.dropFirst(indent)
            if body.allSatisfy({ $0 == " " || $0 == "\t" }) || body == "---" { continue }
            lines.append(Line(indent: indent, text: body, number: n + 1))
        }
        var index = 0
        guard !lines.isEmpty else { return .map([]) }
        return try block(&lines, &index, indent: lines[0].indent)
    }

    static func fromJSON(_ object: Any) -> Value {
        if let dict = object as? [String: Any] { return .map(dict.map { ($0.key, fromJSON($0.value)) }) }
        if let array = object as? [Any] { return .list(array.map(fromJSON)) }
        if let bool = object as? Bool { return .scalar(bool ? "true" : "false") }
        return .scalar("\(object)")
    }

    /// A mapping or a sequence whose lines all start at `indent`.
    static func block(_ lines: inout [Line], _ i: inout Int, indent: Int) throws -> Value {
        if lines[i].text.hasPrefix("- ") || lines[i].text == "-" {
            var items: [Value] = []
            while i < lines.count, lines[i].indent == indent, lines[i].text.hasPrefix("-") {
                // "- key: value" starts a mapping whose further keys sit two columns in.
                let rest = lines[i].text.dropFirst().drop { $0 == " " }
                let inner = indent + (lines[i].text.count - rest.count)
                if rest.isEmpty {
                    i += 1
                    guard i < lines.count, lines[i].indent > indent else { items.append(.scalar("")); continue }
                    items.append(try block(&lines, &i, indent: lines[i].indent))
                } else if splitKey(rest) != nil {
                    lines[i] = Line(indent: inner, text: rest, number: lines[i].number)
                    items.append(try block(&lines, &i, indent: inner))
                } else {
                    items.append(.scalar(scalar(rest)))
                    i += 1
                }
            }
            return .list(items)
        }
        var pairs: [(String, Value)] = []
        while i < lines.count, lines[i].indent == indent {
            guard let (key, value) = splitKey(lines[i].text) else {
                throw KubeConfigError("kubeconfig line \(lines[i].number): expected \"key: value\"")
            }
            i += 1
            if !value.isEmpty {
                pairs.append((key, .scalar(scalar(value))))
            } else if i < lines.count, lines[i].indent > indent || (lines[i].indent == indent && lines[i].text.hasPrefix("- ")) {
                pairs.append((key, try block(&lines, &i, indent: lines[i].indent)))
            } else {
                pairs.append((key, .scalar("")))
            }
        }
        if i < lines.count, lines[i].indent > indent {
            throw KubeConfigError("kubeconfig line \(lines[i].number): unexpected indentation")
        }
        return .map(pairs)
    }

    static func splitKey(_ text: Substring) -> (String, Substring)? {
        if text.hasPrefix("\"") || text.hasPrefix("'") {
            let quote = text.first
            guard let end = text.dropFirst().firstIndex(of: quote ?? "\""), text[text.index(after: end)...].hasPrefix(":") else { return nil }
            let after = text[text.index(end, offsetBy: 2)...]
            guard after.isEmpty || after.hasPrefix(" ") else { return nil }
            return (String(text[text.index(after: text.startIndex)..<end]), after.drop { $0 == " " })
        }
        guard let colon = text.firstIndex(where: { $0 == ":" }) else { return nil }
        let after = text[text.index(after: colon)...]
        guard after.isEmpty || after.hasPrefix(" ") else { return nil }
        return (String(text[..<colon]), after.drop { $0 == " " })
    }

    static func scalar(_ text: Substring) -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.count >= 2, (t.hasPrefix("\"") && t.hasSuffix("\"")) || (t.hasPrefix("'") && t.hasSuffix("'")) {
            let inner = String(t.dropFirst().dropLast())
            return t.hasPrefix("'") ? inner.replacingOccurrences(of: "''", with: "'")
                : inner.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        }
        return t
    }

    /// Drops a `#` comment that is not inside quotes.
    static func stripComment(_ line: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#", previous == " " {
                return line[..<index]
            }
            previous = c
        }
        return line
    }
}
