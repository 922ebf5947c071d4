import FathomModel

/// How a store runs a filter: indexed predicates it answers itself, and a residual it evaluates in Swift on the rows
/// that remain. For every call, `pushed` all true ∧ `residualMatches` ≡ the filter's `matches`.
public struct KFLPlan: Sendable {
    /// Comparison a store can answer from an index.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case equal = "=="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        /// String prefix (`path.startsWith("/api/")`).
        case prefix = "startsWith"
        /// Membership in a constant list (`value` is a `.list`).
        case `in` = "in"
    }

    /// `field operator value`, on a catalogue field's KFL2 name; `value` has the field's type (a list of it for `in`).
    /// Strings compare by UTF-8 bytes (SQLite's BINARY collation); protocol flags are derived from `protocol`, except
    /// `tls`, which is also true for `capture_source == "ebpf_tls"`.
    public struct Predicate: Sendable, Hashable, CustomStringConvertible {
        public let field: String
        public let `operator`: Operator
        public let value: KFLValue

        public init(field: String, operator: Operator, value: KFLValue) {
            self.field = field
            self.operator = `operator`
            self.value = value
        }

        public var description: String {
            `operator` == .prefix ? "\(field).startsWith(\(value))" : "\(field) \(`operator`.rawValue) \(value)"
        }
    }

    /// Top-level conjuncts a store can answer from its indexes, all of which must hold.
    public let pushed: [Predicate]
    let residual: [KFLEvaluatorBox]

    /// True when nothing is left to evaluate in Swift.
    public var isFullyPushed: Bool { residual.isEmpty }

    /// Evaluates only the conjuncts that were not pushed down.
    public func residualMatches(_ call: Call) -> Bool {
        withUnsafePointer(to: call) { KFLFilter.all(residual, $0) }
    }
}
