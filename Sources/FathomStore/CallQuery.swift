import FathomModel

/// What the store answers from its columns and indexes; the rest of a filter is the residual, evaluated in Swift.
public struct StorePredicate: Sendable, Equatable {
    public enum Column: String, Sendable, CaseIterable {
        case ts, proto, method, path, status, node
        case latencyMs = "latency_ms"
        case srcName = "src_name"
        case dstName = "dst_name"
        case srcNamespace = "src_namespace"
        case dstNamespace = "dst_namespace"
        case srcPod = "src_pod"
        case srcService = "src_service"
        case dstPod = "dst_pod"
        case dstService = "dst_service"
        case captureSource = "capture_source"
        case flags
    }

    public enum Operator: String, Sendable {
        case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case hasPrefix
    }

    public enum Value: Sendable, Equatable {
        case integer(Int64)
        case double(Double)
        case text(String)
    }

    indirect enum Form: Sendable, Equatable {
        case compare(Column, Operator, Value)
        case member(Column, [Value], negated: Bool)
        case either([StorePredicate])
    }

    let form: Form

    /// `column op value`. `hasPrefix` is a case-sensitive, indexable string prefix.
    public init(_ column: Column, _ op: Operator, _ value: Value) { form = .compare(column, op, value) }

    /// `column IN (values)`, or `NOT IN` when `negated`; an empty list matches nothing (everything when negated).
    public init(_ column: Column, in values: [Value], negated: Bool = false) { form = .member(column, values, negated: negated) }

    /// True when any of `alternatives` holds; no alternatives match nothing.
    public init(either alternatives: [StorePredicate]) { form = .either(alternatives) }

    /// The SQL condition and its arguments, in order.
    func sql(_ arguments: inout [Value]) -> String {
        switch form {
        case .compare(let column, .hasPrefix, .text(let prefix)):
            // GLOB 'prefix*' is case-sensitive and uses the index (LIKE is neither, by default); the prefix's own `*?[`
            // become one-character classes.
            var pattern = ""
            for character in prefix {
                switch character {
                case "*", "?", "[": pattern += "[\(character)]"
                default: pattern.append(character)
                }
            }
            arguments.append(.text(pattern + "*"))
            return "\(column.rawValue) GLOB ?"
        case .compare(let column, .hasPrefix, _):
            return "\(column.rawValue) IS NULL"  // a prefix of a number: never (the column is NOT NULL)
        case .compare(let column, let op, let value):
            arguments.append(value)
            return "\(column.rawValue) \(op.rawValue) ?"
        case .member(let column, let values, let negated):
            guard !values.isEmpty else { return negated ? "1" : "0" }
            arguments += values
            return "\(column.rawValue) \(negated ? "NOT IN" : "IN") (\(Array(repeating: "?", count: values.count).joined(separator: ", ")))"
        case .either(let alternatives):
            guard !alternatives.isEmpty else { return "0" }
            return "(" + alternatives.map { $0.sql(&arguments) }.joined(separator: " OR ") + ")"
        }
    }
}

/// A query with its own residual closure; `CallsDatabase.calls(matching:)` is the KFL front end.
public struct CallQuery: Sendable {
    public var predicates: [StorePredicate] = []
    /// Evaluated in Swift on the rows the predicates leave.
    public var residual: (@Sendable (Call) -> Bool)?
    public var limit = 100
    /// From a previous page's `nextCursor`.
    public var cursor: Int64?
    /// Rows the store may read beyond the page to count `total`; see `CallPage.totalIsExact`.
    public var countBudget = 0

    public init(
        predicates: [StorePredicate] = [], residual: (@Sendable (Call) -> Bool)? = nil, limit: Int = 100, cursor: Int64? = nil,
        countBudget: Int = 0
    ) {
        self.predicates = predicates
        self.residual = residual
        self.limit = limit
        self.cursor = cursor
        self.countBudget = countBudget
    }
}

/// One page of calls, newest first.
public struct CallPage: Sendable {
    public var calls: [Call] = []
    /// More calls may match than the limit let through: a match past the page was seen, or reading stopped at a full
    /// page before the end (within the count budget, so the next page may turn out empty).
    public var truncated = false
    /// Pass as `cursor` for the next page; nil on the last page.
    public var nextCursor: Int64?
    /// Rows read to fill the page and count (a measure of how selective the pushed-down part was).
    public var scanned = 0
    /// Calls matching from this page's position on (this page included, earlier pages not): exact when `totalIsExact`,
    /// else a lower bound, because counting stopped at the query's count budget.
    public var total = 0
    public var totalIsExact = false
}
