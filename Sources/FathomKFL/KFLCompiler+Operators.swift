import FathomModel

extension KFLCompiler {
    func compileUnary(_ symbol: String, _ operand: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let evaluate = operand.evaluate
        if symbol == "!" {
            try requireBool(operand, for: "!")
            var compiled = node(.bool, at: offset, children: [operand]) { call throws(KFLEvaluationError) in
                .bool(!(try boolValue(try evaluate(call))))
            }
            if let predicate = operand.predicate, operand.field != nil, case .bool(let flag) = predicate.value {
                compiled.predicate = KFLPlan.Predicate(field: predicate.field, operator: .equal, value: .bool(!flag))
            }
            return compiled
        }
        guard [.int, .double, .duration, .dyn].contains(operand.type) else {
            throw error(.typeMismatch, "`-` needs a number, found \(operand.described)", at: offset, expected: ["int", "double"])
        }
        return node(operand.type, at: offset, children: [operand]) { call throws(KFLEvaluationError) in
            switch try evaluate(call) {
            case .int(let value):
                guard value != .min else { throw KFLEvaluationError(message: "integer overflow in `-`") }
                return .int(-value)
            case .double(let value): return .double(-value)
            case .duration(let value):
                guard value != .min else { throw KFLEvaluationError(message: "integer overflow in `-`") }
                return .duration(-value)
            case let other: throw KFLEvaluationError(message: "no `-` for \(other.type)")
            }
        }
    }

    func requireBool(_ operand: Compiled, for symbol: String) throws(KFLError) {
        guard operand.type == .bool || operand.type == .dyn else {
            throw error(.typeMismatch, "`\(symbol)` needs a bool, found \(operand.described)", at: operand.offset, expected: ["bool"])
        }
    }

    func compileBinary(_ symbol: String, _ left: Compiled, _ right: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        switch symbol {
        case "&&", "||": return try compileLogical(symbol, [left, right], at: offset)
        case "==", "!=": return try compileEquality(symbol, left, right, at: offset)
        case "<", "<=", ">", ">=": return try compileOrdering(symbol, left, right, at: offset)
        case "in": return try compileMembership(left, right, at: offset)
        default: return try compileArithmetic(symbol, left, right, at: offset)
        }
    }

    /// `&&` / `||` over any number of operands with CEL's error absorption: a decisive operand wins over an error.
    func compileLogical(_ symbol: String, _ operands: [Compiled], at offset: Int) throws(KFLError) -> Compiled {
        for operand in operands { try requireBool(operand, for: symbol) }
        let decisive = symbol == "||"
        // A constant decisive operand decides; constant neutral operands drop out.
        if operands.contains(where: { $0.constant == .bool(decisive) }) { return .constant(.bool(decisive), offset: offset) }
        let remaining = operands.filter { $0.constant != .bool(!decisive) }
        if remaining.isEmpty { return .constant(.bool(!decisive), offset: offset) }
        if remaining.count == 1, let only = remaining.first, only.type == .bool { return only }
        // Nest binary closures rather than loop over an array: closures held in an Array are called through
        // reabstraction thunks, several times slower on this hot path.
        return remaining.dropFirst().reduce(remaining[0]) { left, right in
            let (first, second) = (left.evaluate, right.evaluate)
            return Compiled(type: .bool, offset: offset) { call throws(KFLEvaluationError) in
                let firstValue: Bool
                do throws(KFLEvaluationError) {
                    firstValue = try boolValue(try first(call))
                } catch {
                    if try boolValue(try second(call)) == decisive { return .bool(decisive) }
                    throw error
                }
                if firstValue == decisive { return .bool(decisive) }
                return .bool(try boolValue(try second(call)))
            }
        }
    }

    private func comparable(_ left: Compiled, _ right: Compiled) -> Bool {
        (left.type.isNumeric && right.type.isNumeric) || left.type.isAssignable(to: right.type)
            || left.type == .null || right.type == .null
    }

    private func compileEquality(_ symbol: String, _ left: Compiled, _ right: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        guard comparable(left, right) else {
            throw error(.typeMismatch, "cannot compare \(left.described) with \(right.described) using `\(symbol)`", at: offset,
                        expected: ["\(left.type)"])
        }
        let wanted = symbol == "=="
        var compiled: Compiled
        if let constant = right.constant {
            let evaluate = left.evaluate
            compiled = node(.bool, at: offset, children: [left, right]) { call throws(KFLEvaluationError) in
                .bool(KFLOperations.equal(try evaluate(call), constant) == wanted)
            }
        } else {
            let (first, second) = (left.evaluate, right.evaluate)
            compiled = node(.bool, at: offset, children: [left, right]) { call throws(KFLEvaluationError) in
                .bool(KFLOperations.equal(try first(call), try second(call)) == wanted)
            }
        }
        if wanted { compiled.predicate = indexedPredicate(.equal, left, right) ?? indexedPredicate(.equal, right, left) }
        return compiled
    }

    private func compileOrdering(_ symbol: String, _ left: Compiled, _ right: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let orderable: Set<KFLType> = [.string, .bytes, .bool, .timestamp, .duration]
        let valid = (left.type.isNumeric && right.type.isNumeric) || left.type == .dyn || right.type == .dyn
            || (left.type == right.type && orderable.contains(left.type))
        guard valid else {
            throw error(.typeMismatch, "cannot compare \(left.described) with \(right.described) using `\(symbol)`", at: offset,
                        expected: ["\(left.type)"])
        }
        let test: @Sendable (Int) -> Bool
        let mirrored: KFLPlan.Operator
        let operatorKind: KFLPlan.Operator
        switch symbol {
        case "<": (test, operatorKind, mirrored) = ({ $0 < 0 }, .less, .greater)
        case "<=": (test, operatorKind, mirrored) = ({ $0 <= 0 }, .lessOrEqual, .greaterOrEqual)
        case ">": (test, operatorKind, mirrored) = ({ $0 > 0 }, .greater, .less)
        default: (test, operatorKind, mirrored) = ({ $0 >= 0 }, .greaterOrEqual, .lessOrEqual)
        }
        let (first, second) = (left.evaluate, right.evaluate)
        var compiled = node(.bool, at: offset, children: [left, right]) { call throws(KFLEvaluationError) in
            .bool(test(try KFLOperations.compare(try first(call), try second(call))))
        }
        compiled.predicate = indexedPredicate(operatorKind, left, right) ?? indexedPredicate(mirrored, right, left)
        return compiled
    }

    /// `field op constant` where the store indexes `field` for `op` and the constant has exactly the field's type.
    private func indexedPredicate(_ operatorKind: KFLPlan.Operator, _ fieldSide: Compiled, _ valueSide: Compiled) -> KFLPlan.Predicate? {
        guard let field = fieldSide.field?.field, let value = valueSide.constant, field.indexedOperators.contains(operatorKind),
              fieldSide.type == field.type, value.type == field.type
        else { return nil }
        return KFLPlan.Predicate(field: field.name, operator: operatorKind, value: value)
    }

    private func compileMembership(_ element: Compiled, _ container: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        let evaluate = element.evaluate
        switch container.type {
        case .list(let elementType):
            let probe = Compiled(type: elementType, offset: container.offset) { _ in .null }
            guard comparable(element, probe) else {
                throw error(.typeMismatch, "cannot look for \(element.described) in \(container.described)", at: offset,
                            expected: ["\(elementType)"])
            }
            var compiled: Compiled
            if case .list(let items)? = container.constant {
                compiled = node(.bool, at: offset, children: [element, container]) { call throws(KFLEvaluationError) in
                    let value = try evaluate(call)
                    return .bool(items.contains { KFLOperations.equal(value, $0) })
                }
                if let field = element.field?.field, field.indexedOperators.contains(.in), element.type == field.type,
                   items.allSatisfy({ $0.type == field.type }) {
                    compiled.predicate = KFLPlan.Predicate(field: field.name, operator: .in, value: .list(items))
                }
            } else {
                let list = container.evaluate
                compiled = node(.bool, at: offset, children: [element, container]) { call throws(KFLEvaluationError) in
                    let value = try evaluate(call)
                    guard case .list(let items) = try list(call) else { return .bool(false) }
                    return .bool(items.contains { KFLOperations.equal(value, $0) })
                }
            }
            return compiled
        case .map(let keyType, _):
            guard element.type.isAssignable(to: keyType) || (element.type.isNumeric && keyType.isNumeric) else {
                throw error(.typeMismatch, "cannot look for \(element.described) among the \(keyType) keys of \(container.described)",
                            at: offset, expected: ["\(keyType)"])
            }
            if let lookup = container.field?.field.lookup, case .string(let key)? = element.constant {
                return Compiled(type: .bool, offset: offset) { call in .bool(lookup(call, key) != nil) }
            }
            let map = container.evaluate
            return node(.bool, at: offset, children: [element, container]) { call throws(KFLEvaluationError) in
                guard case .map(let entries) = try map(call) else { return .bool(false) }
                return .bool(entries[try evaluate(call)] != nil)
            }
        case .dyn:
            let collection = container.evaluate
            return node(.bool, at: offset, children: [element, container]) { call throws(KFLEvaluationError) in
                let value = try evaluate(call)
                switch try collection(call) {
                case .list(let items): return .bool(items.contains { KFLOperations.equal(value, $0) })
                case .map(let entries): return .bool(entries[value] != nil)
                case let other: throw KFLEvaluationError(message: "`in` needs a list or map, found \(other.type)")
                }
            }
        default:
            throw error(.typeMismatch, "`in` needs a list or map on the right, found \(container.described)", at: container.offset,
                        expected: ["list", "map"])
        }
    }

    private func compileArithmetic(_ symbol: String, _ left: Compiled, _ right: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        guard let type = KFLOperations.arithmeticType(symbol, left.type, right.type) else {
            var message = "no `\(symbol)` for \(left.described) and \(right.described)"
            if left.type.isNumeric && right.type.isNumeric { message += "; convert one side with int(), uint() or double()" }
            throw error(.typeMismatch, message, at: offset)
        }
        let (first, second) = (left.evaluate, right.evaluate)
        return node(type, at: offset, children: [left, right]) { call throws(KFLEvaluationError) in
            try KFLOperations.arithmetic(symbol, try first(call), try second(call))
        }
    }

    func compileConditional(_ condition: Compiled, _ then: Compiled, _ otherwise: Compiled, at offset: Int) throws(KFLError) -> Compiled {
        try requireBool(condition, for: "?:")
        guard then.type.isAssignable(to: otherwise.type) || then.type == .null || otherwise.type == .null else {
            throw error(.typeMismatch, "the branches of `?:` differ: \(then.described) and \(otherwise.described)", at: offset)
        }
        if case .bool(let flag)? = condition.constant { return flag ? then : otherwise }
        let type = then.type == otherwise.type ? then.type : .dyn
        let (test, first, second) = (condition.evaluate, then.evaluate, otherwise.evaluate)
        return node(type, at: offset, children: [condition, then, otherwise]) { call throws(KFLEvaluationError) in
            try boolValue(try test(call)) ? try first(call) : try second(call)
        }
    }
}

/// The Bool inside a value; anything else (possible only through `dyn`) is an evaluation error.
@inline(__always)
func boolValue(_ value: KFLValue) throws(KFLEvaluationError) -> Bool {
    guard case .bool(let flag) = value else { throw KFLEvaluationError(message: "expected bool, found \(value.type)") }
    return flag
}
