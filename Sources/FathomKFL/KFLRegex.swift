/// A regular expression in the RE2 subset CEL's `matches` uses, run by a Thompson NFA (Pike VM without captures):
/// time is linear in the text for every pattern, so no filter can backtrack catastrophically.
/// Supported: literals, `.`, classes `[a-z]` `[^…]`, `\d \w \s \D \W \S \b \B`, anchors `^ $ \A \z`, groups `(…)`,
/// `(?:…)`, `(?P<n>…)`, alternation, `* + ? {n} {n,} {n,m}` (lazy forms accepted), leading flags `(?i)` `(?s)`.
struct KFLRegex: Sendable {
    struct SyntaxError: Error {
        let message: String
    }

    private enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any(includingNewline: Bool)
        case split(Int, Int)
        case jump(Int)
        case textStart, textEnd
        case wordBoundary(Bool)
        case match
    }

    private let program: [Instruction]
    private let caseInsensitive: Bool
    private let anchoredPrefix: [UInt8]
    /// The pattern starts with `^`: once no thread is alive, no later position can start a match.
    private let anchoredAtStart: Bool
    /// Programs larger than this are refused (RE2 has a similar limit); repetition counts above 1000 too.
    static let maximumInstructions = 20_000

    init(_ pattern: String) throws(SyntaxError) {
        var parser = RegexParser(Array(pattern.unicodeScalars))
        let tree = try parser.parse()
        caseInsensitive = parser.caseInsensitive
        var emitter = Emitter(caseInsensitive: parser.caseInsensitive, dotAll: parser.dotAll)
        try emitter.emit(tree)
        emitter.program.append(.match)
        program = emitter.program
        anchoredPrefix = KFLRegex.literalPrefix(of: emitter.program, caseInsensitive: parser.caseInsensitive)
        if case .textStart? = emitter.program.first { anchoredAtStart = true } else { anchoredAtStart = false }
    }

    /// For `^literal…` patterns (case-sensitive), the literal's UTF-8: a text without it cannot match.
    private static func literalPrefix(of program: [Instruction], caseInsensitive: Bool) -> [UInt8] {
        guard !caseInsensitive, case .textStart? = program.first else { return [] }
        var prefix = ""
        for instruction in program.dropFirst() {
            guard case .scalar(let scalar) = instruction else { break }
            prefix.unicodeScalars.append(scalar)
        }
        return Array(prefix.utf8)
    }

    /// True when the pattern matches anywhere in `text` (RE2 partial match, as CEL's `matches`).
    func matches(_ text: String) -> Bool {
        if !anchoredPrefix.isEmpty, !utf8HasPrefix(text, anchoredPrefix) { return false }
        var text = text
        return text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 >= 0x80 }) {
                return run(count: bytes.count) { Unicode.Scalar(bytes[$0]) }
            }
            let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
            return scalars.withUnsafeBufferPointer { buffer in run(count: buffer.count) { buffer[$0] } }
        }
    }

    /// The Pike VM over `count` scalars; all state lives in one stack-allocated buffer (two thread lists and the
    /// epsilon-closure stack), so matching allocates nothing for ASCII text.
    @inline(__always)
    private func run(count: Int, scalarAt: (Int) -> Unicode.Scalar) -> Bool {
        let size = program.count
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 6 * size + 2) { memory in
            memory.initialize(repeating: 0)
            var current = ThreadList(memory, offset: 0, size: size)
            var next = ThreadList(memory, offset: 2 * size, size: size)
            let stack = UnsafeMutableBufferPointer(rebasing: memory[(4 * size)...])
            for position in 0...count {
                add(0, at: position, count: count, scalarAt: scalarAt, to: &current, stack: stack)
                if current.containsMatch { return true }
                guard position < count else { break }
                let scalar = foldCase(scalarAt(position))
                next.clear()
                for slot in 0..<current.count {
                    let pc = current.dense[slot]
                    let advances: Bool
                    switch program[pc] {
                    case .scalar(let expected): advances = scalar == expected
                    case .set(let set): advances = set.contains(scalar, caseInsensitive: caseInsensitive)
                    case .any(let includingNewline): advances = includingNewline || scalar != "\n"
                    default: advances = false
                    }
                    if advances { add(pc + 1, at: position + 1, count: count, scalarAt: scalarAt, to: &next, stack: stack) }
                }
                if next.containsMatch { return true }
                swap(&current, &next)
                if current.count == 0, anchoredAtStart { return false }
            }
            return false
        }
    }

    private func foldCase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        guard caseInsensitive else { return scalar }
        return lowercase(scalar)
    }

    /// Follows jumps, splits and assertions from `start`, adding the states that consume a scalar (or match).
    /// Each state enters a list once and pushes at most two successors, so `stack` (2 × program + 2) never overflows.
    @inline(__always)
    private func add(
        _ start: Int, at position: Int, count: Int, scalarAt: (Int) -> Unicode.Scalar, to list: inout ThreadList,
        stack: UnsafeMutableBufferPointer<Int>
    ) {
        var depth = 0
        stack[0] = start
        depth = 1
        while depth > 0 {
            depth -= 1
            let pc = stack[depth]
            guard list.insert(pc) else { continue }
            switch program[pc] {
            case .jump(let target):
                stack[depth] = target
                depth += 1
            case .split(let first, let second):
                stack[depth] = second
                stack[depth + 1] = first
                depth += 2
            case .textStart, .textEnd, .wordBoundary:
                if assertionHolds(program[pc], at: position, count: count, scalarAt: scalarAt) {
                    stack[depth] = pc + 1
                    depth += 1
                }
            case .match: list.containsMatch = true
            default: break
            }
        }
    }

    @inline(__always)
    private func assertionHolds(_ instruction: Instruction, at position: Int, count: Int, scalarAt: (Int) -> Unicode.Scalar) -> Bool {
        switch instruction {
        case .textStart: return position == 0
        case .textEnd: return position == count
        case .wordBoundary(let wanted):
            let before = position > 0 && isWordScalar(scalarAt(position - 1))
            let after = position < count && isWordScalar(scalarAt(position))
            return (before != after) == wanted
        default: return false
        }
    }

    /// A sparse set of program counters in borrowed memory, cleared in O(1).
    private struct ThreadList {
        let dense: UnsafeMutableBufferPointer<Int>
        let sparse: UnsafeMutableBufferPointer<Int>
        private(set) var count = 0
        var containsMatch = false

        init(_ memory: UnsafeMutableBufferPointer<Int>, offset: Int, size: Int) {
            dense = UnsafeMutableBufferPointer(rebasing: memory[offset..<offset + size])
            sparse = UnsafeMutableBufferPointer(rebasing: memory[offset + size..<offset + 2 * size])
        }

        mutating func insert(_ pc: Int) -> Bool {
            let slot = sparse[pc]
            if slot < count, dense[slot] == pc { return false }
            sparse[pc] = count
            dense[count] = pc
            count += 1
            return true
        }

        mutating func clear() {
            count = 0
            containsMatch = false
        }
    }

    private indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any
        case textStart, textEnd
        case wordBoundary(Bool)
        case concatenation([Node])
        case alternation([Node])
        case repetition(Node, minimum: Int, maximum: Int?)
    }

    private struct Emitter {
        let caseInsensitive: Bool
        let dotAll: Bool
        var program: [Instruction] = []

        mutating func emit(_ node: Node) throws(SyntaxError) {
            guard program.count < KFLRegex.maximumInstructions else { throw SyntaxError(message: "pattern too large") }
            switch node {
            case .empty: break
            case .scalar(let scalar): program.append(.scalar(caseInsensitive ? lowercase(scalar) : scalar))
            case .set(let set): program.append(.set(set))
            case .any: program.append(.any(includingNewline: dotAll))
            case .textStart: program.append(.textStart)
            case .textEnd: program.append(.textEnd)
            case .wordBoundary(let wanted): program.append(.wordBoundary(wanted))
            case .concatenation(let nodes):
                for child in nodes { try emit(child) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (index, branch) in branches.enumerated() {
                    if index < branches.count - 1 {
                        let split = program.count
                        program.append(.split(split + 1, 0))
                        try emit(branch)
                        jumps.append(program.count)
                        program.append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repetition(let child, let minimum, let maximum):
                for _ in 0..<minimum { try emit(child) }
                if let maximum {
                    var splits: [Int] = []
                    for _ in minimum..<max(minimum, maximum) {
                        splits.append(program.count)
                        program.append(.split(program.count + 1, 0))
                        try emit(child)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let split = program.count
                    program.append(.split(split + 1, 0))
                    try emit(child)
                    program.append(.jump(split))
                    program[split] = .split(split + 1, program.count)
                }
            }
        }
    }

    private struct RegexParser {
        private let scalars: [Unicode.Scalar]
        private var index = 0
        private var depth = 0
        private(set) var caseInsensitive = false
        private(set) var dotAll = false

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        mutating func parse() throws(SyntaxError) -> Node {
            while current == "(", index + 2 < scalars.count, scalars[index + 1] == "?",
                  scalars[index + 2] == "i" || scalars[index + 2] == "s" {
                index += 2
                while let flag = current, flag == "i" || flag == "s" {
                    if flag == "i" { caseInsensitive = true } else { dotAll = true }
                    index += 1
                }
                guard current == ")" else { throw SyntaxError(message: "unsupported flag group") }
                index += 1
            }
            let node = try parseAlternation()
            guard current == nil else { throw SyntaxError(message: "unmatched `)`") }
            return node
        }

        private mutating func parseAlternation() throws(SyntaxError) -> Node {
            depth += 1
            defer { depth -= 1 }
            guard depth < 100 else { throw SyntaxError(message: "pattern nests too deeply") }
            var branches = [try parseConcatenation()]
            while current == "|" {
                index += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func parseConcatenation() throws(SyntaxError) -> Node {
            var nodes: [Node] = []
            while let scalar = current, scalar != "|", scalar != ")" {
                var atom = try parseAtom()
                var quantified = false
                while let quantifier = current, "*+?{".unicodeScalars.contains(quantifier) {
                    guard let (minimum, maximum) = try parseQuantifier() else { break }
                    if quantified { throw SyntaxError(message: "repeated repetition; use a group") }
                    quantified = true
                    atom = .repetition(atom, minimum: minimum, maximum: maximum)
                    if current == "?" { index += 1 }  // lazy: the same set of matches
                }
                nodes.append(atom)
            }
            return nodes.count == 1 ? nodes[0] : .concatenation(nodes)
        }

        /// nil for a `{` that does not start a valid counted repetition (then it is a literal, as in RE2).
        private mutating func parseQuantifier() throws(SyntaxError) -> (Int, Int?)? {
            guard let scalar = current else { return nil }
            switch scalar {
            case "*": index += 1; return (0, nil)
            case "+": index += 1; return (1, nil)
            case "?": index += 1; return (0, 1)
            default:
                var cursor = index + 1
                func number() -> Int? {
                    var value = 0
                    let start = cursor
                    while cursor < scalars.count, ("0"..."9").contains(scalars[cursor]), value <= 100_000 {
                        value = value * 10 + Int(scalars[cursor].value - 48)
                        cursor += 1
                    }
                    return cursor > start ? value : nil
                }
                guard let minimum = number() else { return nil }
                var maximum: Int? = minimum
                if cursor < scalars.count, scalars[cursor] == "," {
                    cursor += 1
                    maximum = number()
                }
                guard cursor < scalars.count, scalars[cursor] == "}" else { return nil }
                guard minimum <= 1000, (maximum ?? 0) <= 1000, minimum <= (maximum ?? minimum) else {
                    throw SyntaxError(message: "bad repetition count")
                }
                index = cursor + 1
                return (minimum, maximum)
            }
        }

        private mutating func parseAtom() throws(SyntaxError) -> Node {
            guard let scalar = current else { throw SyntaxError(message: "unexpected end of pattern") }
            index += 1
            switch scalar {
            case ".": return .any
            case "^": return .textStart
            case "$": return .textEnd
            case "*", "+", "?": throw SyntaxError(message: "missing argument to repetition operator `\(scalar)`")
            case "[": return .set(try parseClass())
            case "\\": return try parseEscape(inClass: false)
            case "(":
                if current == "?" {
                    index += 1
                    if current == ":" {
                        index += 1
                    } else if current == "P" || current == "<" {
                        if current == "P" { index += 1 }
                        guard current == "<" else { throw SyntaxError(message: "unsupported group syntax") }
                        while let next = current, next != ">" { index += 1 }
                        guard current == ">" else { throw SyntaxError(message: "unterminated group name") }
                        index += 1
                    } else {
                        throw SyntaxError(message: "unsupported group syntax")
                    }
                }
                let inner = try parseAlternation()
                guard current == ")" else { throw SyntaxError(message: "missing `)`") }
                index += 1
                return inner
            default: return .scalar(scalar)
            }
        }

        private mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> Node {
            guard let letter = current else { throw SyntaxError(message: "trailing backslash") }
            index += 1
            switch letter {
            case "d": return .set(.digits)
            case "D": return .set(ScalarSet.digits.inverted)
            case "w": return .set(.word)
            case "W": return .set(ScalarSet.word.inverted)
            case "s": return .set(.space)
            case "S": return .set(ScalarSet.space.inverted)
            case "n": return .scalar("\n")
            case "t": return .scalar("\t")
            case "r": return .scalar("\r")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "b" where !inClass: return .wordBoundary(true)
            case "B" where !inClass: return .wordBoundary(false)
            case "A" where !inClass: return .textStart
            case "z" where !inClass: return .textEnd
            case "x":
                var value: UInt32 = 0
                if current == "{" {
                    index += 1
                    while let digit = current, let nibble = digit.properties.isASCIIHexDigit ? UInt32(String(digit), radix: 16) : nil {
                        value = value &* 16 &+ nibble
                        index += 1
                    }
                    guard current == "}" else { throw SyntaxError(message: "bad \\x escape") }
                    index += 1
                } else {
                    for _ in 0..<2 {
                        guard let digit = current, digit.properties.isASCIIHexDigit, let nibble = UInt32(String(digit), radix: 16) else {
                            throw SyntaxError(message: "bad \\x escape")
                        }
                        value = value * 16 + nibble
                        index += 1
                    }
                }
                guard let scalar = Unicode.Scalar(value) else { throw SyntaxError(message: "bad \\x escape") }
                return .scalar(scalar)
            default:
                guard letter.value < 128, !letter.properties.isAlphabetic, !("0"..."9").contains(letter) else {
                    throw SyntaxError(message: "unsupported escape `\\\(letter)`")
                }
                return .scalar(letter)
            }
        }

        private mutating func parseClass() throws(SyntaxError) -> ScalarSet {
            var set = ScalarSet()
            if current == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while let scalar = current, scalar != "]" || first {
                first = false
                index += 1
                var low = scalar
                if scalar == "\\" {
                    switch try parseEscape(inClass: true) {
                    case .scalar(let escaped): low = escaped
                    case .set(let inner):
                        set.absorb(inner)
                        continue
                    default: throw SyntaxError(message: "unsupported escape in class")
                    }
                }
                if current == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                    index += 1
                    guard var high = current else { break }
                    index += 1
                    if high == "\\" {
                        guard case .scalar(let escaped) = try parseEscape(inClass: true) else {
                            throw SyntaxError(message: "bad class range")
                        }
                        high = escaped
                    }
                    guard low <= high else { throw SyntaxError(message: "bad class range") }
                    set.ranges.append(low...high)
                } else {
                    set.ranges.append(low...low)
                }
            }
            guard current == "]" else { throw SyntaxError(message: "missing `]`") }
            index += 1
            return set
        }
    }
}

/// A character class: ranges of scalars, possibly negated, plus negated sub-classes (`[^\d]`, `[\W_]`).
struct ScalarSet: Sendable {
    var ranges: [ClosedRange<Unicode.Scalar>] = []
    var excluded: [ScalarSet] = []
    var negated = false

    static let digits = ScalarSet(ranges: ["0"..."9"])
    static let word = ScalarSet(ranges: ["0"..."9", "A"..."Z", "a"..."z", "_"..."_"])
    static let space = ScalarSet(ranges: ["\t"..."\n", "\u{0C}"..."\r", " "..." "])

    var inverted: ScalarSet {
        var copy = self
        copy.negated.toggle()
        return copy
    }

    /// Adds `other` (which may itself be negated) to this class.
    mutating func absorb(_ other: ScalarSet) {
        if other.negated { excluded.append(other) } else { ranges += other.ranges }
    }

    func contains(_ scalar: Unicode.Scalar, caseInsensitive: Bool) -> Bool {
        var found = ranges.contains { $0.contains(scalar) } || excluded.contains { $0.contains(scalar, caseInsensitive: false) }
        if !found, caseInsensitive {
            let upper = uppercase(scalar)
            found = ranges.contains { $0.contains(upper) }
        }
        return found != negated
    }
}

private func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
    ScalarSet.word.contains(scalar, caseInsensitive: false)
}

/// Simple case folding; ASCII by arithmetic, because Unicode's mapping builds a String per scalar.
private func lowercase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
    if scalar.value < 0x80 {
        return ("A"..."Z").contains(scalar) ? Unicode.Scalar(UInt8(scalar.value) | 0x20) : scalar
    }
    let mapped = scalar.properties.lowercaseMapping.unicodeScalars
    return mapped.count == 1 ? mapped.first ?? scalar : scalar
}

private func uppercase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
    if scalar.value < 0x80 {
        return ("a"..."z").contains(scalar) ? Unicode.Scalar(UInt8(scalar.value) & 0xDF) : scalar
    }
    let mapped = scalar.properties.uppercaseMapping.unicodeScalars
    return mapped.count == 1 ? mapped.first ?? scalar : scalar
}
