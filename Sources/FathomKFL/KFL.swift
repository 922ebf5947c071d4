import FathomModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// KFL, the filter language over calls: Kubeshark's KFL2 (a CEL subset) with KFL1's spellings accepted too.
///
///     let filter = try KFL.compile(#"request.path == "/api/v1/checkout" and response.status == 503"#)
///     let failing = calls.filter(filter.matches)
public enum KFL {
    /// Parses, type-checks and compiles `source`. `now` (nanoseconds since the epoch) fixes `now()`; default: the clock.
    public static func compile(_ source: String, now: Int64? = nil) throws(KFLError) -> KFLFilter {
        let bytes = Array(source.utf8)
        var lexer = Lexer(bytes)
        var parser = Parser(tokens: try lexer.tokenize(), source: bytes)
        guard let expr = try parser.parseAll() else {
            return KFLFilter(source: source, conjuncts: [], plan: KFLPlan(pushedConjuncts: [], residual: [], residualFields: []))
        }
        let compiler = KFLCompiler(diagnostics: KFLDiagnostics(source: bytes), now: now ?? wallClockNanoseconds())
        let parts = conjunctsOf(expr)
        var conjuncts: [KFLEvaluatorBox] = []
        var pushed: [KFLPlan.Pushed] = []
        var residual: [KFLEvaluatorBox] = []
        var residualFields: Set<String> = []
        for part in parts {
            compiler.reads.names.removeAll()
            let compiled = try compiler.compile(part)
            guard compiled.type == .bool || compiled.type == .dyn else {
                let role = parts.count > 1 ? "each side of `&&`" : "a filter"
                throw compiler.error(.typeMismatch, "\(role) must be a bool expression, found \(compiled.described)",
                                     at: compiled.offset, expected: ["bool"])
            }
            if compiled.constant == .bool(true) { continue }
            let box = KFLEvaluatorBox(evaluate: compiled.evaluate)
            conjuncts.append(box)
            if let predicate = compiled.predicate {
                pushed.append(KFLPlan.Pushed(predicate: predicate, conjunct: box, fields: compiler.reads.names))
            } else {
                residual.append(box)
                residualFields.formUnion(compiler.reads.names)
            }
        }
        return KFLFilter(source: source, conjuncts: conjuncts,
                         plan: KFLPlan(pushedConjuncts: pushed, residual: residual, residualFields: residualFields))
    }

    /// The field catalogue: every field with its aliases, type, description and example.
    public static var fields: [KFLField] { KFLCatalogue.fields }

    /// The field called `name` (KFL2 name or alias), if any.
    public static func field(named name: String) -> KFLField? { KFLCatalogue.field(named: name) }

    /// For a protocol flag (`http`, `dns`, …): the `protocol` values for which it is true. `tls` is also true when
    /// `capture_source == "ebpf_tls"`. Nil for any other name.
    public static func flagProtocols(_ flag: String) -> [String]? { KFLCatalogue.flagProtocols[flag] }

    /// Function and method names, for help texts.
    public static var functions: [String] { KFLCompiler.functionNames }

    /// `a && (b && c)` → [a, b, c]: the top-level conjunction a store may split.
    static func conjunctsOf(_ expr: Expr) -> [Expr] {
        if case .binary("&&", let left, let right) = expr.kind { return conjunctsOf(left) + conjunctsOf(right) }
        return [expr]
    }

    static func wallClockNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

/// A compiled filter. Immutable and thread-safe: share one across threads.
public struct KFLFilter: Sendable {
    /// The expression as written.
    public let source: String
    let conjuncts: [KFLEvaluatorBox]
    /// What a store can push down, and the residual to run in Swift.
    public let plan: KFLPlan

    /// True when the call satisfies the filter. An evaluation error (division by zero, a failed conversion) is no match.
    public func matches(_ call: Call) -> Bool {
        withUnsafePointer(to: call) { KFLFilter.all(conjuncts, $0) }
    }

    /// `matches` on a call borrowed in place: the fast path for scanning a buffer of calls without copying them.
    public func matches(_ call: UnsafePointer<Call>) -> Bool {
        KFLFilter.all(conjuncts, call)
    }

    /// Positions of the calls that match, scanning the array in place: no call is copied, unlike `calls.filter(matches)`.
    public func matchingIndices(in calls: [Call]) -> [Int] {
        calls.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return [] }
            return buffer.indices.filter { KFLFilter.all(conjuncts, base + $0) }
        }
    }

    /// CEL `&&` over the conjuncts: false wins over an error, an error wins over true.
    static func all(_ conjuncts: [KFLEvaluatorBox], _ call: UnsafePointer<Call>) -> Bool {
        var failed = false
        for conjunct in conjuncts {
            do throws(KFLEvaluationError) {
                guard case .bool(true) = try conjunct.evaluate(call) else { return false }
            } catch {
                failed = true
            }
        }
        return !failed
    }
}
