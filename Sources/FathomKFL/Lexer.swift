/// One token of a KFL expression; `offset` is the byte offset of its first character.
struct Token: Equatable {
    enum Kind: Equatable {
        case identifier(String)
        case int(Int64)
        case uint(UInt64)
        case double(Double)
        case string(String)
        /// `r"…"`: a CEL raw string, which KFL1 uses as a regex literal.
        case rawString(String)
        case bytes([UInt8])
        /// Punctuation and operators: `==`, `&&`, `(`, …
        case symbol(String)
        case end
    }

    let kind: Kind
    let offset: Int

    /// How the token reads in an error message.
    var spelling: String {
        switch kind {
        case .identifier(let name): return "`\(name)`"
        case .int, .uint, .double: return "number"
        case .string, .rawString: return "string"
        case .bytes: return "bytes"
        case .symbol(let symbol): return "`\(symbol)`"
        case .end: return "end of input"
        }
    }
}

/// Splits KFL source (both dialects) into tokens.
struct Lexer {
    private let source: [UInt8]
    private let diagnostics: KFLDiagnostics
    private var index = 0

    init(_ source: [UInt8]) {
        self.source = source
        self.diagnostics = KFLDiagnostics(source: source)
    }

    private static let symbols = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":",
                                  ".", ",", "(", ")", "[", "]", "{", "}"]

    mutating func tokenize() throws(KFLError) -> [Token] {
        var tokens: [Token] = []
        while true {
            skipSpaceAndComments()
            let start = index
            guard let byte = peek() else {
                tokens.append(Token(kind: .end, offset: start))
                return tokens
            }
            if let quoteOffset = stringPrefixLength(), let quote = peek(quoteOffset) {
                let prefix = source[index..<index + quoteOffset].map { $0 | 0x20 }
                index += quoteOffset
                let raw = prefix.contains(UInt8(ascii: "r"))
                let isBytes = prefix.contains(UInt8(ascii: "b"))
                let bytes = try readString(quote: quote, raw: raw, start: start)
                if isBytes {
                    tokens.append(Token(kind: .bytes(bytes), offset: start))
                } else {
                    guard let text = String(validating: bytes, as: UTF8.self) else {
                        throw diagnostics.error(.invalidLiteral, "string literal is not valid UTF-8", at: start)
                    }
                    tokens.append(Token(kind: raw ? .rawString(text) : .string(text), offset: start))
                }
            } else if isDigit(byte) || (byte == UInt8(ascii: ".") && peek(1).map(isDigit) == true) {
                tokens.append(try readNumber(start: start))
            } else if isIdentifierStart(byte) {
                while let next = peek(), isIdentifierStart(next) || isDigit(next) { index += 1 }
                tokens.append(Token(kind: .identifier(String(decoding: source[start..<index], as: UTF8.self)), offset: start))
            } else if let symbol = Lexer.symbols.first(where: { matches($0) }) {
                index += symbol.utf8.count
                tokens.append(Token(kind: .symbol(symbol), offset: start))
            } else if byte == UInt8(ascii: "=") {
                throw diagnostics.error(.syntax, "unexpected `=`; use `==` to compare", at: start, expected: ["=="])
            } else if byte == UInt8(ascii: "&") || byte == UInt8(ascii: "|") {
                let doubled = String(decoding: [byte, byte], as: UTF8.self)
                throw diagnostics.error(.syntax, "unexpected `\(Character(Unicode.Scalar(byte)))`; use `\(doubled)`",
                                        at: start, expected: [doubled])
            } else {
                let scalar = String(decoding: source[start..<min(start + 4, source.count)], as: UTF8.self).unicodeScalars.first
                throw diagnostics.error(.syntax, "unexpected character `\(scalar.map(String.init) ?? "?")`", at: start)
            }
        }
    }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        index + ahead < source.count ? source[index + ahead] : nil
    }

    private func matches(_ symbol: String) -> Bool {
        var offset = 0
        for byte in symbol.utf8 {
            guard peek(offset) == byte else { return false }
            offset += 1
        }
        return true
    }

    private mutating func skipSpaceAndComments() {
        while let byte = peek() {
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C {
                index += 1
            } else if byte == UInt8(ascii: "/"), peek(1) == UInt8(ascii: "/") {
                while let next = peek(), next != 0x0A { index += 1 }
            } else {
                return
            }
        }
    }

    /// Length of a string prefix (`r`, `b`, `rb`, `br`, any case) followed by a quote, 0 for a bare quote, or nil.
    private func stringPrefixLength() -> Int? {
        func isQuote(_ byte: UInt8?) -> Bool { byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") }
        func isPrefix(_ byte: UInt8?) -> Bool {
            guard let byte else { return false }
            let lower = byte | 0x20
            return lower == UInt8(ascii: "r") || lower == UInt8(ascii: "b")
        }
        if isQuote(peek()) { return 0 }
        if isPrefix(peek()), isQuote(peek(1)) { return 1 }
        if isPrefix(peek()), isPrefix(peek(1)), (peek() ?? 0) | 0x20 != (peek(1) ?? 0) | 0x20, isQuote(peek(2)) { return 2 }
        return nil
    }

    /// Reads a quoted literal (single, double or triple quotes) and returns its bytes with escapes resolved.
    private mutating func readString(quote: UInt8, raw: Bool, start: Int) throws(KFLError) -> [UInt8] {
        let triple = peek(1) == quote && peek(2) == quote
        index += triple ? 3 : 1
        var bytes: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw diagnostics.error(.syntax, "unterminated string literal", at: start, expected: [String(Character(Unicode.Scalar(quote)))])
            }
            if byte == quote, !triple || (peek(1) == quote && peek(2) == quote) {
                index += triple ? 3 : 1
                return bytes
            }
            if !triple, byte == 0x0A {
                throw diagnostics.error(.syntax, "unterminated string literal", at: start, expected: [String(Character(Unicode.Scalar(quote)))])
            }
            if byte == UInt8(ascii: "\\"), !raw {
                try readEscape(into: &bytes)
            } else {
                bytes.append(byte)
                index += 1
            }
        }
    }

    private mutating func readEscape(into bytes: inout [UInt8]) throws(KFLError) {
        let escapeStart = index
        index += 1
        guard let letter = peek() else {
            throw diagnostics.error(.syntax, "unterminated string literal", at: escapeStart)
        }
        index += 1
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09, UInt8(ascii: "a"): 0x07,
            UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "v"): 0x0B, UInt8(ascii: "\\"): 0x5C,
            UInt8(ascii: "\""): 0x22, UInt8(ascii: "'"): 0x27, UInt8(ascii: "`"): 0x60, UInt8(ascii: "?"): 0x3F,
        ]
        if let value = simple[letter] {
            bytes.append(value)
            return
        }
        func digits(_ count: Int, radix: Int) throws(KFLError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let byte = peek(), let digit = Int(String(Character(Unicode.Scalar(byte))), radix: radix) else {
                    throw diagnostics.error(.invalidLiteral, "invalid escape sequence", at: escapeStart)
                }
                value = value * UInt32(radix) + UInt32(digit)
                index += 1
            }
            return value
        }
        switch letter {
        case UInt8(ascii: "x"), UInt8(ascii: "X"):
            bytes.append(UInt8(try digits(2, radix: 16)))
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let value = try digits(letter == UInt8(ascii: "u") ? 4 : 8, radix: 16)
            guard let scalar = Unicode.Scalar(value) else {
                throw diagnostics.error(.invalidLiteral, "invalid Unicode escape", at: escapeStart)
            }
            bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
        case UInt8(ascii: "0")...UInt8(ascii: "3"):
            index -= 1
            bytes.append(UInt8(try digits(3, radix: 8)))
        default:
            throw diagnostics.error(.invalidLiteral, "invalid escape sequence", at: escapeStart)
        }
    }

    private mutating func readNumber(start: Int) throws(KFLError) -> Token {
        if peek() == UInt8(ascii: "0"), let x = peek(1), x | 0x20 == UInt8(ascii: "x") {
            index += 2
            let digitsStart = index
            while let byte = peek(), isHexDigit(byte) { index += 1 }
            let text = String(decoding: source[digitsStart..<index], as: UTF8.self)
            return try integerToken(text, radix: 16, start: start)
        }
        var isDouble = false
        while let byte = peek(), isDigit(byte) { index += 1 }
        if peek() == UInt8(ascii: "."), let next = peek(1), isDigit(next) {
            isDouble = true
            index += 1
            while let byte = peek(), isDigit(byte) { index += 1 }
        }
        if let e = peek(), e | 0x20 == UInt8(ascii: "e") {
            var lookahead = 1
            if peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-") { lookahead = 2 }
            if let digit = peek(lookahead), isDigit(digit) {
                isDouble = true
                index += lookahead
                while let byte = peek(), isDigit(byte) { index += 1 }
            }
        }
        let text = String(decoding: source[start..<index], as: UTF8.self)
        if isDouble {
            guard let value = Double(text) else {
                throw diagnostics.error(.invalidLiteral, "invalid number `\(text)`", at: start)
            }
            return Token(kind: .double(value), offset: start)
        }
        return try integerToken(text, radix: 10, start: start)
    }

    private mutating func integerToken(_ digits: String, radix: Int, start: Int) throws(KFLError) -> Token {
        if let suffix = peek(), suffix | 0x20 == UInt8(ascii: "u") {
            index += 1
            guard let value = UInt64(digits, radix: radix) else {
                throw diagnostics.error(.invalidLiteral, "unsigned integer literal out of range", at: start)
            }
            return Token(kind: .uint(value), offset: start)
        }
        guard let value = Int64(digits, radix: radix) else {
            throw diagnostics.error(.invalidLiteral, "integer literal out of range", at: start)
        }
        return Token(kind: .int(value), offset: start)
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
private func isHexDigit(_ byte: UInt8) -> Bool {
    isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
}
private func isIdentifierStart(_ byte: UInt8) -> Bool {
    (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
}
