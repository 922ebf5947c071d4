import FathomModel

/// Evaluates a subexpression on the call behind the pointer: calls are borrowed in place, never copied (a Call is
/// hundreds of bytes with dozens of references; copying one per closure level dominated evaluation time).
typealias KFLEvaluator = @Sendable (UnsafePointer<Call>) throws(KFLEvaluationError) -> KFLValue

/// An evaluator to keep in an array: wrapped, the closure is stored at its own abstraction level and is called directly,
/// where a bare closure element would be called through a reabstraction thunk.
struct KFLEvaluatorBox: Sendable {
    let evaluate: KFLEvaluator
}

/// A type-checked, compiled subexpression: a closure over the call, with what is known about it at compile time.
struct Compiled {
    let type: KFLType
    let offset: Int
    let evaluate: KFLEvaluator
    /// The value when it does not depend on the call (folded at compile time).
    var constant: KFLValue?
    /// The catalogue field and the spelling used, when the expression is exactly a field.
    var field: (field: KFLField, spelling: String)?
    /// Set when the expression is a predicate a store can answer from an index.
    var predicate: KFLPlan.Predicate?

    init(type: KFLType, offset: Int, evaluate: @escaping KFLEvaluator) {
        self.type = type
        self.offset = offset
        self.evaluate = evaluate
    }

    static func constant(_ value: KFLValue, type: KFLType? = nil, offset: Int) -> Compiled {
        var compiled = Compiled(type: type ?? value.type, offset: offset) { _ in value }
        compiled.constant = value
        return compiled
    }

    /// How the operand reads in a message: "`status_code` (int)", "\"503\" (string)" or "int".
    var described: String {
        if let field { return "`\(field.spelling)` (\(type))" }
        if let constant { return "\(constant) (\(type))" }
        return "\(type)"
    }
}

/// Type-checks an expression against the field catalogue and compiles it to closures; fields, regexes, constant
/// subexpressions and `now()` are resolved here, once.
struct KFLCompiler {
    let diagnostics: KFLDiagnostics
    /// `now()`, fixed for the whole compilation so every call sees the same instant.
    let now: Int64
    /// KFL2 names of the catalogue fields compiled so far (cleared per conjunct by `KFL.compile`).
    let reads = KFLFieldReads()

    /// A call with every field at its default, used to fold constant subexpressions.
    static let placeholderCall = Call(
        id: "", ts: 0, node: "", captureSource: .ebpf, proto: "", src: Endpoint(ip: "", port: 0),
        dst: Endpoint(ip: "", port: 0))

    func error(_ kind: KFLError.Kind, _ message: String, at offset: Int, expected: [String] = [], suggestions: [String] = []) -> KFLError {
        diagnostics.error(kind, message, at: offset, expected: expected, suggestions: suggestions)
    }

    /// A node over `children`, folded to a constant when every child is constant and evaluation succeeds.
    func node(_ type: KFLType, at offset: Int, children: [Compiled], _ evaluate: @escaping KFLEvaluator) -> Compiled {
        if children.allSatisfy({ $0.constant != nil }),
           let value = withUnsafePointer(to: KFLCompiler.placeholderCall, { try? evaluate($0) }) {
            return .constant(value, type: type, offset: offset)
        }
        return Compiled(type: type, offset: offset, evaluate: evaluate)
    }

    func compile(_ expr: Expr) throws(KFLError) -> Compiled {
        switch expr.kind {
        case .literal(let value):
            return .constant(value, offset: expr.offset)
        case .identifier, .select:
            return try compileName(expr)
        case .index(let target, let key):
            return try compileIndex(try compile(target), try compile(key), at: expr.offset)
        case .call(let name, let arguments):
            return try compileFunction(name, receiver: nil, arguments: arguments, at: expr.offset)
        case .method(let target, let name, let arguments):
            return try compileFunction(name, receiver: target, arguments: arguments, at: expr.offset)
        case .unary(let symbol, let operand):
            return try compileUnary(symbol, try compile(operand), at: expr.offset)
        case .binary(let symbol, let left, let right):
            return try compileBinary(symbol, try compile(left), try compile(right), at: expr.offset)
        case .conditional(let condition, let then, let otherwise):
            return try compileConditional(try compile(condition), try compile(then), try compile(otherwise), at: expr.offset)
        case .list(let items):
            let elements = try items.map { (item: Expr) throws(KFLError) -> Compiled in try compile(item) }
            let evaluators = elements.map { KFLEvaluatorBox(evaluate: $0.evaluate) }
            return node(.list(KFLType.common(elements.map(\.type))), at: expr.offset, children: elements) { call throws(KFLEvaluationError) in
                var values: [KFLValue] = []
                values.reserveCapacity(evaluators.count)
                for evaluator in evaluators { values.append(try evaluator.evaluate(call)) }
                return .list(values)
            }
        case .map(let entries):
            var keys: [Compiled] = []
            var values: [Compiled] = []
            for entry in entries {
                let key = try compile(entry.key)
                guard [.string, .int, .uint, .bool, .dyn].contains(key.type) else {
                    throw error(.typeMismatch, "map keys must be string, int, uint or bool, found \(key.described)", at: key.offset)
                }
                keys.append(key)
                values.append(try compile(entry.value))
            }
            let pairs = zip(keys.map(\.evaluate), values.map(\.evaluate)).map { $0 }
            let type = KFLType.map(KFLType.common(keys.map(\.type)), KFLType.common(values.map(\.type)))
            return node(type, at: expr.offset, children: keys + values) { call throws(KFLEvaluationError) in
                var map: [KFLValue: KFLValue] = [:]
                for (key, value) in pairs { map[try key(call)] = try value(call) }
                return .map(map)
            }
        }
    }

    // MARK: Names

    /// `a.b.c` as ["a", "b", "c"] when the expression is only names and dots.
    private func dottedParts(_ expr: Expr) -> [String]? {
        switch expr.kind {
        case .identifier(let name): return [name]
        case .select(let target, let name): return dottedParts(target).map { $0 + [name] }
        default: return nil
        }
    }

    /// Resolves the longest dotted prefix that names a field; what follows selects into a map (`request.query.page`).
    private func compileName(_ expr: Expr) throws(KFLError) -> Compiled {
        guard let parts = dottedParts(expr) else {
            guard case .select(let target, let name) = expr.kind else { return try compile(expr) }
            return try compileSelect(try compile(target), name, fullName: nil, at: expr.offset)
        }
        let start = startOffset(expr)
        let fullName = parts.joined(separator: ".")
        for length in stride(from: parts.count, through: 1, by: -1) {
            let name = parts[0..<length].joined(separator: ".")
            guard let field = KFLCatalogue.byName[name] else { continue }
            var compiled = Compiled(type: field.type, offset: start) { [read = field.read] call in read(call) }
            compiled.field = (field, name)
            reads.names.insert(field.name)
            if field.type == .bool, field.indexedOperators.contains(.equal) {
                compiled.predicate = KFLPlan.Predicate(field: field.name, operator: .equal, value: .bool(true))
            }
            for member in parts[length...] {
                compiled = try compileSelect(compiled, member, fullName: fullName, at: start)
            }
            return compiled
        }
        throw unknownField(fullName, at: start)
    }

    private func startOffset(_ expr: Expr) -> Int {
        if case .select(let target, _) = expr.kind { return startOffset(target) }
        return expr.offset
    }

    func unknownField(_ name: String, at offset: Int) -> KFLError {
        let suggestions = nearestNames(to: name, among: KFLCatalogue.byName.keys)
        var message = "unknown field `\(name)`"
        if let best = suggestions.first { message += "; did you mean \(KFLCatalogue.describe(best))?" }
        return error(.unknownField, message, at: offset, expected: ["field"], suggestions: suggestions)
    }

    /// `.name` on a map value: the entry, or the value type's default when absent.
    private func compileSelect(_ target: Compiled, _ name: String, fullName: String?, at offset: Int) throws(KFLError) -> Compiled {
        switch target.type {
        case .map(let keyType, let valueType) where keyType == .string || keyType == .dyn:
            return compileLookup(target, key: .constant(.string(name), offset: offset), valueType: valueType, at: offset)
        case .dyn:
            return compileLookup(target, key: .constant(.string(name), offset: offset), valueType: .dyn, at: offset)
        default:
            if let fullName { throw unknownField(fullName, at: offset) }
            throw error(.typeMismatch, "\(target.described) has no member `\(name)`", at: offset)
        }
    }

    private func compileIndex(_ target: Compiled, _ key: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        switch target.type {
        case .list(let element):
            guard key.type == .int || key.type == .uint || key.type == .dyn else {
                throw error(.typeMismatch, "a list index must be an int, found \(key.described)", at: key.offset, expected: ["int"])
            }
            let (list, index) = (target.evaluate, key.evaluate)
            return node(element, at: offset, children: [target, key]) { call throws(KFLEvaluationError) in
                guard case .list(let items) = try list(call) else { throw KFLEvaluationError(message: "not a list") }
                let position: Int
                switch try index(call) {
                case .int(let value) where value >= 0 && value < items.count: position = Int(value)
                case .uint(let value) where value < items.count: position = Int(value)
                default: throw KFLEvaluationError(message: "list index out of range")
                }
                return items[position]
            }
        case .map(let keyType, let valueType):
            guard key.type.isAssignable(to: keyType) || (key.type.isNumeric && keyType.isNumeric) else {
                throw error(.typeMismatch, "\(target.described) has \(keyType) keys, not \(key.described)", at: key.offset,
                            expected: ["\(keyType)"])
            }
            return compileLookup(target, key: key, valueType: valueType, at: offset)
        case .dyn:
            return compileLookup(target, key: key, valueType: .dyn, at: offset)
        default:
            throw error(.typeMismatch, "\(target.described) cannot be indexed", at: offset, expected: ["list", "map"])
        }
    }

    /// Map lookup; a field with a keyed reader and a constant string key never builds the map.
    func compileLookup(_ target: Compiled, key: Compiled, valueType: KFLType, at offset: Int) -> Compiled {
        let missing = valueType.defaultValue
        if let lookup = target.field?.field.lookup, case .string(let name)? = key.constant {
            return Compiled(type: valueType, offset: offset) { call in lookup(call, name) ?? missing }
        }
        let (map, index) = (target.evaluate, key.evaluate)
        return node(valueType, at: offset, children: [target, key]) { call throws(KFLEvaluationError) in
            let container = try map(call)
            let keyValue = try index(call)
            switch container {
            case .map(let entries): return entries[keyValue] ?? missing
            case .list(let items):
                guard case .int(let position) = keyValue, position >= 0, position < items.count else {
                    throw KFLEvaluationError(message: "list index out of range")
                }
                return items[Int(position)]
            default: throw KFLEvaluationError(message: "\(container.type) cannot be indexed")
            }
        }
    }
}

/// The fields an expression reads, collected while compiling it: a store decodes only what the residual needs.
final class KFLFieldReads {
    var names: Set<String> = []
}
