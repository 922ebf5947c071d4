import FathomModel
import GRDB

/// What the store can answer from its columns and indexes; the rest of a filter is the residual.
public struct StorePredicate: Sendable, Equatable {
    public enum Column: String, Sendable, CaseIterable {
        case ts, proto, method, path, status
        case latencyMs = "latency_ms"
        case srcName = "src_name"
        case dstName = "dst_name"
        case srcNamespace = "src_namespace"
        case dstNamespace = "dst_namespace"
        case captureSource = "capture_source"
    }

    public enum Operator: String, Sendable {
        case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case hasPrefix
    }

    public enum Value: Sendable, Equatable {
        case integer(Int64)
        case double(Double)
        case text(String)

        var databaseValue: DatabaseValue {
            switch self {
            case .integer(let v): v.databaseValue
            case .double(let v): v.databaseValue
            case .text(let v): v.databaseValue
            }
        }
    }

    public var column: Column
    public var op: Operator
    public var value: Value

    public init(_ column: Column, _ op: Operator, _ value: Value) {
        self.column = column
        self.op = op
        self.value = value
    }

    /// `hasPrefix` becomes GLOB 'prefix*': case-sensitive and indexable (SQLite's LIKE is neither, by default),
    /// with the prefix's own `*?[` escaped as character classes.
    var sql: String {
        switch op {
        case .hasPrefix: "\(column.rawValue) GLOB ?"
        default: "\(column.rawValue) \(op.rawValue) ?"
        }
    }

    var argument: DatabaseValue {
        guard op == .hasPrefix, case .text(let prefix) = value else { return value.databaseValue }
        var pattern = ""
        for c in prefix {
            switch c {
            case "*", "?", "[": pattern += "[\(c)]"
            default: pattern.append(c)
            }
        }
        return (pattern + "*").databaseValue
    }
}

public struct CallQuery: Sendable {
    public var predicates: [StorePredicate] = []
    /// Evaluated in Swift on the rows the predicates leave.
    public var residual: (@Sendable (Call) -> Bool)?
    public var limit = 100
    /// From a previous page's `nextCursor`.
    public var cursor: Int64?

    public init(predicates: [StorePredicate] = [], residual: (@Sendable (Call) -> Bool)? = nil, limit: Int = 100, cursor: Int64? = nil) {
        self.predicates = predicates
        self.residual = residual
        self.limit = limit
        self.cursor = cursor
    }
}

public struct CallPage: Sendable {
    public var calls: [Call] = []
    /// More calls match than the limit let through.
    public var truncated = false
    /// Pass as `cursor` for the next page; nil on the last page.
    public var nextCursor: Int64?
    /// Rows read to fill the page (a measure of how selective the pushed-down part was).
    public var scanned = 0
}
