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

    /// A pushed predicate with the conjunct it came from, so a store that cannot answer it can evaluate it instead.
    struct Pushed: Sendable {
        let predicate: Predicate
        let conjunct: KFLEvaluatorBox
        let fields: Set<String>
    }

    let pushedConjuncts: [Pushed]
    let residual: [KFLEvaluatorBox]

    /// Top-level conjuncts a store can answer from its indexes, all of which must hold.
    public var pushed: [Predicate] { pushedConjuncts.map(\.predicate) }

    /// KFL2 names of the catalogue fields the residual reads: a store needs to materialise only these.
    public let residualFields: Set<String>

    init(pushedConjuncts: [Pushed], residual: [KFLEvaluatorBox], residualFields: Set<String>) {
        self.pushedConjuncts = pushedConjuncts
        self.residual = residual
        self.residualFields = residualFields
    }

    /// True when nothing is left to evaluate in Swift.
    public var isFullyPushed: Bool { residual.isEmpty }

    /// The plan of a store that answers only the pushed predicates `answerable` accepts: the others join the residual,
    /// evaluated exactly as full evaluation would.
    public func keepingPushed(where answerable: (Predicate) -> Bool) -> KFLPlan {
        var kept: [Pushed] = []
        var residual = residual
        var fields = residualFields
        for entry in pushedConjuncts {
            if answerable(entry.predicate) {
                kept.append(entry)
            } else {
                residual.append(entry.conjunct)
                fields.formUnion(entry.fields)
            }
        }
        return KFLPlan(pushedConjuncts: kept, residual: residual, residualFields: fields)
    }

    /// Evaluates only the conjuncts that were not pushed down.
    public func residualMatches(_ call: Call) -> Bool {
        withUnsafePointer(to: call) { KFLFilter.all(residual, $0) }
    }

    /// `residualMatches` on a call borrowed in place (a store's scratch call), without copying it.
    public func residualMatches(_ call: UnsafePointer<Call>) -> Bool {
        KFLFilter.all(residual, call)
    }
}
