/// A place in the expression text.
public struct KFLPosition: Sendable, Hashable, CustomStringConvertible {
    /// Byte offset into the expression's UTF-8.
    public let offset: Int
    /// 1-based line.
    public let line: Int
    /// 1-based column, counted in Unicode scalars.
    public let column: Int

    /// The position of UTF-8 byte `offset` in `source`.
    init(offset: Int, in source: [UInt8]) {
        var line = 1
        var column = 1
        for byte in source.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        self.offset = offset
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// Why an expression was rejected. Errors are data: the API and MCP server pass them on as they are.
public struct KFLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The family of the error, for programs that react to it.
    public enum Kind: String, Sendable, Hashable {
        case syntax, unknownField, unknownFunction, typeMismatch, invalidLiteral, invalidRegex
    }

    public let kind: Kind
    /// One sentence, without the position: "unknown field `x`; did you mean `y`?".
    public let message: String
    public let position: KFLPosition
    /// What would have been valid here (tokens, types or argument counts), when known.
    public let expected: [String]
    /// The nearest valid names, best first (at most three).
    public let suggestions: [String]

    /// "1:17: message", the form shown to users.
    public var description: String { "\(position): \(message)" }
}

/// Builds errors against one source text.
struct KFLDiagnostics {
    let source: [UInt8]

    func error(
        _ kind: KFLError.Kind, _ message: String, at offset: Int, expected: [String] = [], suggestions: [String] = []
    ) -> KFLError {
        KFLError(
            kind: kind, message: message, position: KFLPosition(offset: offset, in: source), expected: expected,
            suggestions: suggestions)
    }
}

/// Names within a small edit distance of `name`, best first.
func nearestNames(to name: String, among candidates: some Sequence<String>, limit: Int = 3) -> [String] {
    let target = Array(name.lowercased().utf8)
    let threshold = max(2, target.count / 3)
    var scored: [(distance: Int, name: String)] = []
    for candidate in candidates {
        let distance = editDistance(target, Array(candidate.lowercased().utf8))
        if distance <= threshold { scored.append((distance, candidate)) }
    }
    scored.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.name < $1.name }
    var seen = Set<String>()
    return scored.map(\.name).filter { seen.insert($0).inserted }.prefix(limit).map { $0 }
}

/// Damerau–Levenshtein (optimal string alignment) distance, so a swapped pair of letters costs one edit.
func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previousPrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                best = min(best, previousPrevious[j - 2] + 1)
            }
            current[j] = best
        }
        (previousPrevious, previous, current) = (previous, current, previousPrevious)
    }
    return previous[b.count]
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
func quotedAlternatives(_ names: [String]) -> String {
    let quotedNames = names.map { "`\($0)`" }
    guard quotedNames.count > 1, let last = quotedNames.last else { return quotedNames.first ?? "" }
    return quotedNames.dropLast().joined(separator: ", ") + " or " + last
}
