import FathomModel

extension KFLCompiler {
    /// Every function and method name KFL knows (for suggestions and the API's help).
    static let functionNames = ["contains", "startsWith", "endsWith", "matches", "size", "map_get", "timestamp", "duration",
                                "now", "int", "uint", "double", "string"]

    /// A global call `name(arguments)` (receiver nil) or a method `receiver.name(arguments)`.
    func compileFunction(_ name: String, receiver: Expr?, arguments: [Expr], at offset: Int) throws(KFLError) -> Compiled {
        guard KFLCompiler.functionNames.contains(name) else {
            let suggestions = nearestNames(to: name, among: KFLCompiler.functionNames)
            var message = "unknown function `\(name)`"
            if let best = suggestions.first { message += "; did you mean `\(best)`?" }
            throw error(.unknownFunction, message, at: offset, expected: ["function"], suggestions: suggestions)
        }
        // Methods and global calls share one argument list with the receiver first: `s.contains(x)` ≡ `contains(s, x)`.
        let all = try ((receiver.map { [$0] } ?? []) + arguments).map { (expr: Expr) throws(KFLError) -> Compiled in try compile(expr) }
        func arity(_ count: Int) throws(KFLError) {
            guard all.count == count else {
                let shown = receiver == nil ? count : count - 1
                let found = receiver == nil ? all.count : all.count - 1
                let form = receiver == nil ? "`\(name)()`" : "`.\(name)()`"
                throw error(.typeMismatch, "\(form) takes \(shown) argument\(shown == 1 ? "" : "s"), found \(found)", at: offset,
                            expected: ["\(shown) arguments"])
            }
        }
        switch name {
        case "contains", "startsWith", "endsWith":
            try arity(2)
            return try compileStringTest(name, all[0], all[1], at: offset)
        case "matches":
            try arity(2)
            return try compileMatches(all[0], all[1], at: offset)
        case "size":
            try arity(1)
            return try compileSize(all[0], at: offset)
        case "map_get":
            try arity(3)
            return try compileMapGet(all[0], all[1], all[2], at: offset)
        case "timestamp", "duration":
            try arity(1)
            return try compileTime(name, all[0], at: offset)
        case "now":
            try arity(0)
            return .constant(.timestamp(now), offset: offset)
        default:
            try arity(1)
            return try compileConversion(name, all[0], at: offset)
        }
    }

    private func requireString(_ operand: Compiled, for name: String, role: String) throws(KFLError) {
        guard operand.type == .string || operand.type == .dyn else {
            throw error(.typeMismatch, "`\(name)` needs a string \(role), found \(operand.described)", at: operand.offset,
                        expected: ["string"])
        }
    }

    private func compileStringTest(_ name: String, _ subject: Compiled, _ part: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        try requireString(subject, for: name, role: "to search in")
        try requireString(part, for: name, role: "argument")
        let test: @Sendable (String, [UInt8]) -> Bool =
            name == "contains" ? utf8Contains : (name == "startsWith" ? utf8HasPrefix : utf8HasSuffix)
        let evaluate = subject.evaluate
        var compiled: Compiled
        if case .string(let constant)? = part.constant {
            let needle = Array(constant.utf8)
            compiled = node(.bool, at: offset, children: [subject, part]) { call throws(KFLEvaluationError) in
                guard case .string(let text) = try evaluate(call) else { throw KFLEvaluationError(message: "`\(name)` needs a string") }
                return .bool(test(text, needle))
            }
            if name == "startsWith", let field = subject.field?.field, field.indexedOperators.contains(.prefix) {
                compiled.predicate = KFLPlan.Predicate(field: field.name, operator: .prefix, value: .string(constant))
            }
        } else {
            let argument = part.evaluate
            compiled = node(.bool, at: offset, children: [subject, part]) { call throws(KFLEvaluationError) in
                guard case .string(let text) = try evaluate(call), case .string(let other) = try argument(call) else {
                    throw KFLEvaluationError(message: "`\(name)` needs strings")
                }
                return .bool(test(text, Array(other.utf8)))
            }
        }
        return compiled
    }

    private func compileMatches(_ subject: Compiled, _ pattern: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        try requireString(subject, for: "matches", role: "to search in")
        try requireString(pattern, for: "matches", role: "pattern")
        let evaluate = subject.evaluate
        if case .string(let source)? = pattern.constant {
            let regex: KFLRegex
            do throws(KFLRegex.SyntaxError) {
                regex = try KFLRegex(source)
            } catch let failure {
                throw error(.invalidRegex, "invalid regular expression: \(failure.message)", at: pattern.offset,
                            expected: ["RE2 syntax"])
            }
            return node(.bool, at: offset, children: [subject, pattern]) { call throws(KFLEvaluationError) in
                guard case .string(let text) = try evaluate(call) else { throw KFLEvaluationError(message: "`matches` needs a string") }
                return .bool(regex.matches(text))
            }
        }
        let patternEvaluate = pattern.evaluate
        return node(.bool, at: offset, children: [subject, pattern]) { call throws(KFLEvaluationError) in
            guard case .string(let text) = try evaluate(call), case .string(let source) = try patternEvaluate(call) else {
                throw KFLEvaluationError(message: "`matches` needs strings")
            }
            do throws(KFLRegex.SyntaxError) {
                return .bool(try KFLRegex(source).matches(text))
            } catch let failure {
                throw KFLEvaluationError(message: "invalid regular expression: \(failure.message)")
            }
        }
    }

    private func compileSize(_ operand: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        switch operand.type {
        case .string, .bytes, .list, .map, .dyn: break
        default:
            throw error(.typeMismatch, "`size` needs a string, bytes, list or map, found \(operand.described)", at: operand.offset,
                        expected: ["string", "bytes", "list", "map"])
        }
        let evaluate = operand.evaluate
        return node(.int, at: offset, children: [operand]) { call throws(KFLEvaluationError) in
            switch try evaluate(call) {
            case .string(let text): return .int(Int64(text.unicodeScalars.count))
            case .bytes(let bytes): return .int(Int64(bytes.count))
            case .list(let items): return .int(Int64(items.count))
            case .map(let entries): return .int(Int64(entries.count))
            case let other: throw KFLEvaluationError(message: "no `size` for \(other.type)")
            }
        }
    }

    private func compileMapGet(_ map: Compiled, _ key: Compiled, _ fallback: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let (keyType, valueType): (KFLType, KFLType)
        switch map.type {
        case .map(let mapKey, let mapValue): (keyType, valueType) = (mapKey, mapValue)
        case .dyn: (keyType, valueType) = (.dyn, .dyn)
        default:
            throw error(.typeMismatch, "`map_get` needs a map, found \(map.described)", at: map.offset, expected: ["map"])
        }
        guard key.type.isAssignable(to: keyType) else {
            throw error(.typeMismatch, "`map_get` key must be \(keyType), found \(key.described)", at: key.offset, expected: ["\(keyType)"])
        }
        guard fallback.type.isAssignable(to: valueType) || fallback.type == .null else {
            throw error(.typeMismatch, "`map_get` default must be \(valueType), found \(fallback.described)", at: fallback.offset,
                        expected: ["\(valueType)"])
        }
        let type = fallback.type == valueType ? valueType : .dyn
        let (keyEvaluate, fallbackEvaluate) = (key.evaluate, fallback.evaluate)
        if let lookup = map.field?.field.lookup, case .string(let name)? = key.constant {
            return Compiled(type: type, offset: offset) { call throws(KFLEvaluationError) in
                if let value = lookup(call, name) { return value }
                return try fallbackEvaluate(call)
            }
        }
        let mapEvaluate = map.evaluate
        return node(type, at: offset, children: [map, key, fallback]) { call throws(KFLEvaluationError) in
            guard case .map(let entries) = try mapEvaluate(call) else { throw KFLEvaluationError(message: "`map_get` needs a map") }
            if let value = entries[try keyEvaluate(call)] { return value }
            return try fallbackEvaluate(call)
        }
    }

    private func compileTime(_ name: String, _ operand: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let isTimestamp = name == "timestamp"
        let accepted: [KFLType] = isTimestamp ? [.string, .int, .timestamp, .dyn] : [.string, .duration, .dyn]
        guard accepted.contains(operand.type) else {
            throw error(.typeMismatch, "`\(name)` needs a string, found \(operand.described)", at: operand.offset, expected: ["string"])
        }
        let hint = isTimestamp ? "RFC 3339 like \"2024-05-01T12:00:00Z\"" : "a number and unit like \"5m\", \"1h30m\" or \"250ms\""
        let convert: @Sendable (KFLValue) throws(KFLEvaluationError) -> KFLValue = { value throws(KFLEvaluationError) in
            switch value {
            case .string(let text):
                if isTimestamp, let nanoseconds = KFLTime.parseTimestamp(text) { return .timestamp(nanoseconds) }
                if !isTimestamp, let nanoseconds = KFLTime.parseDuration(text) { return .duration(nanoseconds) }
                throw KFLEvaluationError(message: "invalid \(name) \(value); expected \(hint)")
            case .int(let seconds) where isTimestamp:
                let (nanoseconds, overflow) = seconds.multipliedReportingOverflow(by: KFLTime.nanosecondsPerSecond)
                if overflow { throw KFLEvaluationError(message: "timestamp out of range") }
                return .timestamp(nanoseconds)
            case .timestamp where isTimestamp, .duration where !isTimestamp: return value
            default: throw KFLEvaluationError(message: "invalid \(name) argument \(value)")
            }
        }
        if let constant = operand.constant {
            do throws(KFLEvaluationError) {
                return .constant(try convert(constant), offset: offset)
            } catch let failure {
                throw error(.invalidLiteral, failure.message, at: operand.offset, expected: [hint])
            }
        }
        let evaluate = operand.evaluate
        return Compiled(type: isTimestamp ? .timestamp : .duration, offset: offset) { call throws(KFLEvaluationError) in
            try convert(try evaluate(call))
        }
    }

    private func compileConversion(_ name: String, _ operand: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let target: KFLType = ["int": .int, "uint": .uint, "double": .double][name] ?? .string
        guard KFLOperations.canConvert(operand.type, to: target) else {
            throw error(.typeMismatch, "cannot convert \(operand.described) to \(target)", at: operand.offset)
        }
        let evaluate = operand.evaluate
        let converted = node(target, at: offset, children: [operand]) { call throws(KFLEvaluationError) in
            try KFLOperations.convert(try evaluate(call), to: target)
        }
        if operand.constant != nil, converted.constant == nil, let value = operand.constant {
            throw error(.invalidLiteral, "cannot convert \(value) to \(target)", at: operand.offset)
        }
        return converted
    }
}
