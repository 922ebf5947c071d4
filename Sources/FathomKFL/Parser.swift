/// A parsed expression; `offset` is where its text starts (for an operator, where the operator is).
struct Expr {
    indirect enum Kind {
        case literal(KFLValue)
        case identifier(String)
        case select(Expr, String)
        case index(Expr, Expr)
        case call(String, [Expr])
        case method(Expr, String, [Expr])
        case unary(String, Expr)
        case binary(String, Expr, Expr)
        case conditional(Expr, Expr, Expr)
        case list([Expr])
        case map([(key: Expr, value: Expr)])
    }

    let kind: Kind
    let offset: Int
    /// Longest path to a leaf; bounded by the parser so compiling and evaluating never recurse too deep.
    let height: Int

    init(kind: Kind, offset: Int) {
        self.kind = kind
        self.offset = offset
        let children: [Expr]
        switch kind {
        case .literal, .identifier: children = []
        case .select(let target, _): children = [target]
        case .index(let target, let key): children = [target, key]
        case .call(_, let arguments): children = arguments
        case .method(let target, _, let arguments): children = [target] + arguments
        case .unary(_, let operand): children = [operand]
        case .binary(_, let left, let right): children = [left, right]
        case .conditional(let condition, let then, let otherwise): children = [condition, then, otherwise]
        case .list(let items): children = items
        case .map(let entries): children = entries.flatMap { [$0.key, $0.value] }
        }
        height = (children.map(\.height).max() ?? 0) + 1
    }
}

/// Recursive-descent parser for KFL2 (CEL) with KFL1's spellings folded in: `and`/`or`/`not` are `&&`/`||`/`!`,
/// and `a contains b` (likewise `startsWith`, `endsWith`, `matches`) is `a.contains(b)`.
struct Parser {
    private let tokens: [Token]
    private let diagnostics: KFLDiagnostics
    private var position = 0
    private var depth = 0
    /// Deep enough for any real filter, shallow enough that recursion never exhausts the stack.
    private static let maximumDepth = 250
    static let infixMethods: Set<String> = ["contains", "startsWith", "endsWith", "matches"]

    init(tokens: [Token], source: [UInt8]) {
        self.tokens = tokens
        self.diagnostics = KFLDiagnostics(source: source)
    }

    /// Parses the whole input; nil for an empty expression (which matches everything).
    mutating func parseAll() throws(KFLError) -> Expr? {
        if current.kind == .end { return nil }
        let expr = try parseExpression()
        guard current.kind == .end else {
            throw diagnostics.error(
                .syntax, "expected an operator or end of input, found \(current.spelling)", at: current.offset,
                expected: ["operator", "end of input"])
        }
        return expr
    }

    private var current: Token { tokens[min(position, tokens.count - 1)] }

    private mutating func advance() -> Token {
        let token = current
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }
    private func isWord(_ word: String) -> Bool { current.kind == .identifier(word) }

    private mutating func expect(_ symbol: String, after what: String) throws(KFLError) {
        guard isSymbol(symbol) else {
            throw diagnostics.error(
                .syntax, "expected `\(symbol)` \(what), found \(current.spelling)", at: current.offset, expected: [symbol])
        }
        _ = advance()
    }

    private func node(_ kind: Expr.Kind, at offset: Int) throws(KFLError) -> Expr {
        let expr = Expr(kind: kind, offset: offset)
        guard expr.height <= Parser.maximumDepth else {
            throw diagnostics.error(.syntax, "expression nests too deeply", at: offset)
        }
        return expr
    }

    /// Counts recursion so deeply nested input is an error, not a stack overflow.
    private mutating func enter() throws(KFLError) {
        depth += 1
        guard depth <= Parser.maximumDepth else {
            throw diagnostics.error(.syntax, "expression nests too deeply", at: current.offset)
        }
    }

    private mutating func parseExpression() throws(KFLError) -> Expr {
        try enter()
        defer { depth -= 1 }
        let condition = try parseOr()
        guard isSymbol("?") else { return condition }
        let offset = advance().offset
        let then = try parseOr()
        try expect(":", after: "in a conditional")
        let otherwise = try parseExpression()
        return try node(.conditional(condition, then, otherwise), at: offset)
    }

    private mutating func parseOr() throws(KFLError) -> Expr {
        var left = try parseAnd()
        while isSymbol("||") || isWord("or") {
            let offset = advance().offset
            let right = try parseAnd()
            left = try node(.binary("||", left, right), at: offset)
        }
        return left
    }

    private mutating func parseAnd() throws(KFLError) -> Expr {
        var left = try parseRelation()
        while isSymbol("&&") || isWord("and") {
            let offset = advance().offset
            let right = try parseRelation()
            left = try node(.binary("&&", left, right), at: offset)
        }
        return left
    }

    private static let relations: Set<String> = ["==", "!=", "<", "<=", ">", ">="]

    private mutating func parseRelation() throws(KFLError) -> Expr {
        var left = try parseAddition()
        while true {
            if case .symbol(let symbol) = current.kind, Parser.relations.contains(symbol) {
                let offset = advance().offset
                left = try node(.binary(symbol, left, try parseAddition()), at: offset)
            } else if isWord("in") {
                let offset = advance().offset
                left = try node(.binary("in", left, try parseAddition()), at: offset)
            } else if case .identifier(let word) = current.kind, Parser.infixMethods.contains(word) {
                let offset = advance().offset
                left = try node(.method(left, word, [try parseAddition()]), at: offset)
            } else {
                return left
            }
        }
    }

    private mutating func parseAddition() throws(KFLError) -> Expr {
        var left = try parseMultiplication()
        while isSymbol("+") || isSymbol("-") {
            let token = advance()
            guard case .symbol(let symbol) = token.kind else { break }
            left = try node(.binary(symbol, left, try parseMultiplication()), at: token.offset)
        }
        return left
    }

    private mutating func parseMultiplication() throws(KFLError) -> Expr {
        var left = try parseUnary()
        while isSymbol("*") || isSymbol("/") || isSymbol("%") {
            let token = advance()
            guard case .symbol(let symbol) = token.kind else { break }
            left = try node(.binary(symbol, left, try parseUnary()), at: token.offset)
        }
        return left
    }

    private mutating func parseUnary() throws(KFLError) -> Expr {
        if isSymbol("!") || isWord("not") || isSymbol("-") {
            let token = advance()
            let symbol = token.kind == .symbol("-") ? "-" : "!"
            try enter()
            defer { depth -= 1 }
            let operand = try parseUnary()
            // Fold a negative literal so `-9223372036854775808` and `-1` are literals, not negations.
            if symbol == "-", case .literal(let value) = operand.kind {
                switch value {
                case .int(let number) where number != .min: return try node(.literal(.int(-number)), at: token.offset)
                case .double(let number): return try node(.literal(.double(-number)), at: token.offset)
                default: break
                }
            }
            return try node(.unary(symbol, operand), at: token.offset)
        }
        return try parseMember()
    }

    private mutating func parseMember() throws(KFLError) -> Expr {
        var expr = try parsePrimary()
        while true {
            if isSymbol(".") {
                let dot = advance()
                guard case .identifier(let name) = current.kind else {
                    throw diagnostics.error(
                        .syntax, "expected a field or method name after `.`, found \(current.spelling)",
                        at: current.offset, expected: ["name"])
                }
                let nameToken = advance()
                if isSymbol("(") {
                    _ = advance()
                    expr = try node(.method(expr, name, try parseArguments(closing: ")")), at: nameToken.offset)
                } else {
                    expr = try node(.select(expr, name), at: dot.offset)
                }
            } else if isSymbol("[") {
                let bracket = advance()
                let key = try parseExpression()
                try expect("]", after: "to close the index")
                expr = try node(.index(expr, key), at: bracket.offset)
            } else {
                return expr
            }
        }
    }

    private mutating func parseArguments(closing: String) throws(KFLError) -> [Expr] {
        var arguments: [Expr] = []
        if isSymbol(closing) {
            _ = advance()
            return arguments
        }
        while true {
            arguments.append(try parseExpression())
            if isSymbol(",") {
                _ = advance()
                if isSymbol(closing) { break }  // CEL allows a trailing comma.
            } else {
                break
            }
        }
        try expect(closing, after: closing == ")" ? "to close the argument list" : "to close the list")
        return arguments
    }

    private mutating func parsePrimary() throws(KFLError) -> Expr {
        let token = advance()
        switch token.kind {
        case .int(let value): return try node(.literal(.int(value)), at: token.offset)
        case .uint(let value): return try node(.literal(.uint(value)), at: token.offset)
        case .double(let value): return try node(.literal(.double(value)), at: token.offset)
        case .string(let value), .rawString(let value): return try node(.literal(.string(value)), at: token.offset)
        case .bytes(let value): return try node(.literal(.bytes(value)), at: token.offset)
        case .identifier(let name):
            switch name {
            case "true": return try node(.literal(.bool(true)), at: token.offset)
            case "false": return try node(.literal(.bool(false)), at: token.offset)
            case "null": return try node(.literal(.null), at: token.offset)
            default: break
            }
            if isSymbol("(") {
                _ = advance()
                return try node(.call(name, try parseArguments(closing: ")")), at: token.offset)
            }
            return try node(.identifier(name), at: token.offset)
        case .symbol("("):
            let inner = try parseExpression()
            try expect(")", after: "to close the parenthesis")
            return inner
        case .symbol("["):
            return try node(.list(try parseArguments(closing: "]")), at: token.offset)
        case .symbol("{"):
            return try parseMapLiteral(offset: token.offset)
        default:
            throw diagnostics.error(
                .syntax, "expected an expression, found \(token.spelling)", at: token.offset,
                expected: ["field", "literal", "(", "!"])
        }
    }

    private mutating func parseMapLiteral(offset: Int) throws(KFLError) -> Expr {
        var entries: [(key: Expr, value: Expr)] = []
        while !isSymbol("}") {
            let key = try parseExpression()
            try expect(":", after: "between a map key and its value")
            entries.append((key, try parseExpression()))
            guard isSymbol(",") else { break }
            _ = advance()
        }
        try expect("}", after: "to close the map")
        return try node(.map(entries), at: offset)
    }
}
