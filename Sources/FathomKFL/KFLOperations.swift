/// A failure while evaluating one call (division by zero, overflow, a bad conversion). Per CEL, `false && error` is
/// false and `true || error` is true; anywhere else the call does not match.
struct KFLEvaluationError: Error {
    let message: String
}

/// CEL's operators on values, shared by constant folding and evaluation.
enum KFLOperations {
    /// CEL equality: numbers compare by value across int, uint and double; strings by code points.
    static func equal(_ left: KFLValue, _ right: KFLValue) -> Bool {
        switch (left, right) {
        case (.string(let a), .string(let b)): return utf8Equal(a, b)
        case (.int, _), (.uint, _), (.double, _):
            return compareNumbers(left, right) == 0
        case (.list(let a), .list(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case (.map(let a), .map(let b)):
            return a.count == b.count && a.allSatisfy { entry in b[entry.key].map { equal($0, entry.value) } ?? false }
        default: return left == right
        }
    }

    /// -1, 0 or 1 for two numbers of any numeric type; nil when either is not a number (or NaN is involved).
    static func compareNumbers(_ left: KFLValue, _ right: KFLValue) -> Int? {
        switch (left, right) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.uint(let a), .uint(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.int(let a), .uint(let b)): return a < 0 ? -1 : compareNumbers(.uint(UInt64(a)), .uint(b))
        case (.uint(let a), .int(let b)): return b < 0 ? 1 : compareNumbers(.uint(a), .uint(UInt64(b)))
        case (.double(let a), _):
            guard let b = doubleValue(right), !a.isNaN, !b.isNaN else { return nil }
            return a < b ? -1 : (a == b ? 0 : 1)
        case (_, .double):
            return compareNumbers(right, left).map { -$0 }
        default: return nil
        }
    }

    private static func doubleValue(_ value: KFLValue) -> Double? {
        switch value {
        case .int(let number): return Double(number)
        case .uint(let number): return Double(number)
        case .double(let number): return number
        default: return nil
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`.
    static func compare(_ left: KFLValue, _ right: KFLValue) throws(KFLEvaluationError) -> Int {
        switch (left, right) {
        case (.string(let a), .string(let b)): return utf8Compare(a, b)
        case (.bytes(let a), .bytes(let b)): return a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.timestamp(let a), .timestamp(let b)), (.duration(let a), .duration(let b)):
            return a < b ? -1 : (a == b ? 0 : 1)
        default:
            guard let order = compareNumbers(left, right) else {
                throw KFLEvaluationError(message: "cannot order \(left.type) and \(right.type)")
            }
            return order
        }
    }

    static func arithmetic(_ symbol: String, _ left: KFLValue, _ right: KFLValue) throws(KFLEvaluationError) -> KFLValue {
        func overflow() -> KFLEvaluationError { KFLEvaluationError(message: "integer overflow in `\(symbol)`") }
        switch (symbol, left, right) {
        case ("+", .int(let a), .int(let b)):
            let (sum, overflowed) = a.addingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .int(sum)
        case ("-", .int(let a), .int(let b)):
            let (difference, overflowed) = a.subtractingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .int(difference)
        case ("*", .int(let a), .int(let b)):
            let (product, overflowed) = a.multipliedReportingOverflow(by: b)
            if overflowed { throw overflow() }
            return .int(product)
        case ("/", .int(let a), .int(let b)), ("%", .int(let a), .int(let b)):
            if b == 0 { throw KFLEvaluationError(message: "division by zero") }
            let (result, overflowed) = symbol == "/" ? a.dividedReportingOverflow(by: b) : a.remainderReportingOverflow(dividingBy: b)
            if overflowed { throw overflow() }
            return .int(result)
        case ("+", .uint(let a), .uint(let b)):
            let (sum, overflowed) = a.addingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .uint(sum)
        case ("-", .uint(let a), .uint(let b)):
            let (difference, overflowed) = a.subtractingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .uint(difference)
        case ("*", .uint(let a), .uint(let b)):
            let (product, overflowed) = a.multipliedReportingOverflow(by: b)
            if overflowed { throw overflow() }
            return .uint(product)
        case ("/", .uint(let a), .uint(let b)), ("%", .uint(let a), .uint(let b)):
            if b == 0 { throw KFLEvaluationError(message: "division by zero") }
            return .uint(symbol == "/" ? a / b : a % b)
        case ("+", .double(let a), .double(let b)): return .double(a + b)
        case ("-", .double(let a), .double(let b)): return .double(a - b)
        case ("*", .double(let a), .double(let b)): return .double(a * b)
        case ("/", .double(let a), .double(let b)): return .double(a / b)
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .bytes(let a), .bytes(let b)): return .bytes(a + b)
        case ("+", .list(let a), .list(let b)): return .list(a + b)
        case ("+", .timestamp(let a), .duration(let b)), ("+", .duration(let b), .timestamp(let a)):
            let (sum, overflowed) = a.addingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .timestamp(sum)
        case ("-", .timestamp(let a), .duration(let b)):
            let (difference, overflowed) = a.subtractingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .timestamp(difference)
        case ("-", .timestamp(let a), .timestamp(let b)):
            let (difference, overflowed) = a.subtractingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .duration(difference)
        case ("+", .duration(let a), .duration(let b)):
            let (sum, overflowed) = a.addingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .duration(sum)
        case ("-", .duration(let a), .duration(let b)):
            let (difference, overflowed) = a.subtractingReportingOverflow(b)
            if overflowed { throw overflow() }
            return .duration(difference)
        default:
            throw KFLEvaluationError(message: "no `\(symbol)` for \(left.type) and \(right.type)")
        }
    }

    /// The result type of an arithmetic operator on two static types, or nil when CEL has no such overload.
    static func arithmeticType(_ symbol: String, _ left: KFLType, _ right: KFLType) -> KFLType? {
        if left == .dyn || right == .dyn { return .dyn }
        switch (symbol, left, right) {
        case (_, .int, .int), (_, .uint, .uint): return left
        case ("%", .double, .double): return nil
        case (_, .double, .double): return left
        case ("+", .string, .string), ("+", .bytes, .bytes): return left
        case ("+", .list(let a), .list(let b)): return a == b ? left : .list(.dyn)
        case ("+", .timestamp, .duration), ("+", .duration, .timestamp), ("-", .timestamp, .duration): return .timestamp
        case ("-", .timestamp, .timestamp), ("+", .duration, .duration), ("-", .duration, .duration): return .duration
        default: return nil
        }
    }

    /// `int(x)`, `uint(x)`, `double(x)`, `string(x)` as CEL defines them.
    static func convert(_ value: KFLValue, to target: KFLType) throws(KFLEvaluationError) -> KFLValue {
        let failure = KFLEvaluationError(message: "cannot convert \(value) to \(target)")
        switch (target, value) {
        case (.int, .int), (.uint, .uint), (.double, .double), (.string, .string): return value
        case (.int, .uint(let number)): guard number <= UInt64(Int64.max) else { throw failure }; return .int(Int64(number))
        case (.int, .double(let number)):
            guard number.isFinite, number > -9.3e18, number < 9.3e18, let exact = Int64(exactly: number.rounded(.towardZero)) else { throw failure }
            return .int(exact)
        case (.int, .string(let text)): guard let number = Int64(text) else { throw failure }; return .int(number)
        case (.int, .timestamp(let nanoseconds)): return .int(nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds + 1) / 1_000_000_000 - 1)
        case (.int, .duration(let nanoseconds)): return .int(nanoseconds)
        case (.uint, .int(let number)): guard number >= 0 else { throw failure }; return .uint(UInt64(number))
        case (.uint, .double(let number)):
            guard number.isFinite, number > -1, number < 1.8e19, let exact = UInt64(exactly: number.rounded(.towardZero)) else { throw failure }
            return .uint(exact)
        case (.uint, .string(let text)): guard let number = UInt64(text) else { throw failure }; return .uint(number)
        case (.double, .int(let number)): return .double(Double(number))
        case (.double, .uint(let number)): return .double(Double(number))
        case (.double, .string(let text)): guard let number = Double(text) else { throw failure }; return .double(number)
        case (.string, .int(let number)): return .string(String(number))
        case (.string, .uint(let number)): return .string(String(number))
        case (.string, .double(let number)): return .string(String(number))
        case (.string, .bool(let flag)): return .string(flag ? "true" : "false")
        case (.string, .bytes(let bytes)):
            guard let text = String(validating: bytes, as: UTF8.self) else { throw failure }
            return .string(text)
        case (.string, .timestamp(let nanoseconds)): return .string(KFLTime.format(timestampNanoseconds: nanoseconds))
        case (.string, .duration(let nanoseconds)): return .string(KFLTime.format(durationNanoseconds: nanoseconds))
        default: throw failure
        }
    }

    /// Static check for a conversion: can a `source` ever convert to `target`?
    static func canConvert(_ source: KFLType, to target: KFLType) -> Bool {
        switch (target, source) {
        case (_, .dyn): return true
        case (.int, .int), (.int, .uint), (.int, .double), (.int, .string), (.int, .timestamp), (.int, .duration): return true
        case (.uint, .int), (.uint, .uint), (.uint, .double), (.uint, .string): return true
        case (.double, .int), (.double, .uint), (.double, .double), (.double, .string): return true
        case (.string, .int), (.string, .uint), (.string, .double), (.string, .string), (.string, .bool), (.string, .bytes),
             (.string, .timestamp), (.string, .duration): return true
        default: return false
        }
    }
}

/// Strings compare by code point (byte order of UTF-8), not by Swift's canonical equivalence.
func utf8Equal(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
}

func utf8Compare(_ a: String, _ b: String) -> Int {
    if utf8Equal(a, b) { return 0 }
    return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
}

/// Substring search on UTF-8 bytes (equivalent to code-point search for valid UTF-8).
func utf8Contains(_ haystack: String, _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty else { return true }
    var haystack = haystack
    return haystack.withUTF8 { bytes in
        guard bytes.count >= needle.count, let first = needle.first else { return false }
        var start = 0
        let last = bytes.count - needle.count
        while start <= last {
            if bytes[start] == first {
                var offset = 1
                while offset < needle.count, bytes[start + offset] == needle[offset] { offset += 1 }
                if offset == needle.count { return true }
            }
            start += 1
        }
        return false
    }
}

func utf8HasPrefix(_ text: String, _ prefix: [UInt8]) -> Bool {
    var text = text
    return text.withUTF8 { bytes in
        bytes.count >= prefix.count && prefix.indices.allSatisfy { bytes[$0] == prefix[$0] }
    }
}

func utf8HasSuffix(_ text: String, _ suffix: [UInt8]) -> Bool {
    var text = text
    return text.withUTF8 { bytes in
        let start = bytes.count - suffix.count
        return start >= 0 && suffix.indices.allSatisfy { bytes[start + $0] == suffix[$0] }
    }
}
