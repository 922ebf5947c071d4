import FathomKFL
import FathomModel

extension CallsDatabase {
    /// Calls matching a KFL filter, newest first: the plan's pushed predicates the store answers exactly become SQL on
    /// its columns, the rest is evaluated in Swift on the rows that remain, reading only the columns it needs when it
    /// can. `start`/`end` bound the call time (ms, end exclusive). Up to `countBudget` rows are read in all to count
    /// `total`; past it `total` is a lower bound (`totalIsExact` false).
    public func calls(
        matching filter: KFLFilter, limit: Int = 100, cursor: Int64? = nil, start: Int64? = nil, end: Int64? = nil,
        countBudget: Int = 100_000
    ) throws -> CallPage {
        let plan = filter.plan.keepingPushed { KFLPushDown.translate($0) != nil }
        var predicates = plan.pushed.flatMap { KFLPushDown.translate($0) ?? [] }
        if let start { predicates.append(StorePredicate(.ts, .greaterOrEqual, .integer(start))) }
        if let end { predicates.append(StorePredicate(.ts, .less, .integer(end))) }
        let access: ScanAccess
        if plan.isFullyPushed {
            access = .none
        } else if let columns = ScratchColumn.columns(for: plan.residualFields) {
            access = .columns(columns)
        } else {
            access = .record
        }
        return try scan(predicates: predicates, access: access, limit: limit, cursor: cursor, countBudget: countBudget) {
            plan.residualMatches($0)
        }
    }
}

/// Translation of KFL plan predicates into the store's columns, exact by construction: every column holds exactly
/// what the KFL field reads for the same call (the namespace, pod and service columns hold "" for nil, as the fields
/// read; `src_name` is `Endpoint.name`, as `src.name` reads), and strings compare bytewise in both.
enum KFLPushDown {
    /// The store's conjunction equivalent to `predicate`, or nil when the store cannot answer it exactly.
    static func translate(_ predicate: KFLPlan.Predicate) -> [StorePredicate]? {
        if let protocols = KFL.flagProtocols(predicate.field) {
            guard predicate.operator == .equal, case .bool(let wanted) = predicate.value else { return nil }
            let values = protocols.map(StorePredicate.Value.text)
            guard predicate.field == "tls" else { return [StorePredicate(.proto, in: values, negated: !wanted)] }
            // `tls` is also true for plaintext read from a TLS library.
            let decrypted = StorePredicate(.captureSource, .equal, .text(CaptureSource.ebpfTLS.rawValue))
            if wanted { return [StorePredicate(either: [StorePredicate(.proto, in: values), decrypted])] }
            return [StorePredicate(.proto, in: values, negated: true),
                    StorePredicate(.captureSource, .notEqual, .text(CaptureSource.ebpfTLS.rawValue))]
        }
        if predicate.field == "timestamp" { return timestamp(predicate) }
        if predicate.field == "status_code" { return integer(.status, predicate) }
        guard let column = stringColumns[predicate.field] else { return nil }
        return text(column, predicate)
    }

    static let stringColumns: [String: StorePredicate.Column] = [
        "protocol": .proto, "method": .method, "path": .path, "node_id": .node, "capture_source": .captureSource,
        "src.name": .srcName, "dst.name": .dstName, "src.namespace": .srcNamespace, "dst.namespace": .dstNamespace,
        "src.pod.name": .srcPod, "dst.pod.name": .dstPod, "src.service.name": .srcService, "dst.service.name": .dstService,
    ]

    private static func text(_ column: StorePredicate.Column, _ predicate: KFLPlan.Predicate) -> [StorePredicate]? {
        switch (predicate.operator, predicate.value) {
        case (.equal, .string(let value)): return [StorePredicate(column, .equal, .text(value))]
        case (.in, .list(let items)):
            var values: [StorePredicate.Value] = []
            for item in items {
                guard case .string(let value) = item else { return nil }
                values.append(.text(value))
            }
            return [StorePredicate(column, in: values)]
        // GLOB reads its pattern up to a NUL byte: such a prefix stays in Swift.
        case (.prefix, .string(let prefix)) where !prefix.utf8.contains(0):
            return [StorePredicate(column, .hasPrefix, .text(prefix))]
        default: return nil
        }
    }

    private static func integer(_ column: StorePredicate.Column, _ predicate: KFLPlan.Predicate) -> [StorePredicate]? {
        if predicate.operator == .in, case .list(let items) = predicate.value {
            var values: [StorePredicate.Value] = []
            for item in items {
                guard case .int(let value) = item else { return nil }
                values.append(.integer(value))
            }
            return [StorePredicate(column, in: values)]
        }
        guard case .int(let value) = predicate.value, let op = comparison(predicate.operator) else { return nil }
        return [StorePredicate(column, op, .integer(value))]
    }

    /// KFL timestamps are nanoseconds, the column milliseconds: `ts·10⁶ > N` ⇔ `ts > ⌊N/10⁶⌋`, and so on, rounding
    /// so integer milliseconds compare exactly. (KFL computes `ts·10⁶` wrapping, so calls dated outside 1678–2262 are
    /// the one place the store and full evaluation could disagree.)
    private static func timestamp(_ predicate: KFLPlan.Predicate) -> [StorePredicate]? {
        let perMillisecond: Int64 = 1_000_000
        func floorDivision(_ n: Int64) -> Int64 { n >= 0 || n % perMillisecond == 0 ? n / perMillisecond : n / perMillisecond - 1 }
        func ceilingDivision(_ n: Int64) -> Int64 { n <= 0 || n % perMillisecond == 0 ? n / perMillisecond : n / perMillisecond + 1 }
        switch (predicate.operator, predicate.value) {
        case (.greater, .timestamp(let n)): return [StorePredicate(.ts, .greater, .integer(floorDivision(n)))]
        case (.greaterOrEqual, .timestamp(let n)): return [StorePredicate(.ts, .greaterOrEqual, .integer(ceilingDivision(n)))]
        case (.less, .timestamp(let n)): return [StorePredicate(.ts, .less, .integer(ceilingDivision(n)))]
        case (.lessOrEqual, .timestamp(let n)): return [StorePredicate(.ts, .lessOrEqual, .integer(floorDivision(n)))]
        case (.equal, .timestamp(let n)):
            // No whole millisecond equals a sub-millisecond instant.
            return n % perMillisecond == 0 ? [StorePredicate(.ts, .equal, .integer(n / perMillisecond))] : [StorePredicate(either: [])]
        case (.in, .list(let items)):
            var values: [StorePredicate.Value] = []
            for item in items {
                guard case .timestamp(let n) = item else { return nil }
                if n % perMillisecond == 0 { values.append(.integer(n / perMillisecond)) }
            }
            return [StorePredicate(.ts, in: values)]
        default: return nil
        }
    }

    private static func comparison(_ op: KFLPlan.Operator) -> StorePredicate.Operator? {
        switch op {
        case .equal: .equal
        case .less: .less
        case .lessOrEqual: .lessOrEqual
        case .greater: .greater
        case .greaterOrEqual: .greaterOrEqual
        case .prefix, .in: nil
        }
    }
}

/// A column copied into the scratch call a residual is evaluated on, when every field the residual reads comes from
/// columns: the scan then never touches the stored record, only the (small, in-page) columns.
enum ScratchColumn: Hashable, CaseIterable {
    case ts, proto, captureSource, method, path, status, latencyMs, node, flags
    case srcName, dstName, srcNamespace, dstNamespace, srcPod, srcService, dstPod, dstService

    var column: StorePredicate.Column {
        switch self {
        case .ts: .ts
        case .proto: .proto
        case .captureSource: .captureSource
        case .method: .method
        case .path: .path
        case .status: .status
        case .latencyMs: .latencyMs
        case .node: .node
        case .flags: .flags
        case .srcName: .srcName
        case .dstName: .dstName
        case .srcNamespace: .srcNamespace
        case .dstNamespace: .dstNamespace
        case .srcPod: .srcPod
        case .srcService: .srcService
        case .dstPod: .dstPod
        case .dstService: .dstService
        }
    }

    /// The columns that reproduce, on a default call, exactly what these KFL fields read; nil when some field needs the
    /// stored record. Each field's reader touches only the properties set here (see KFLCatalogue).
    static func columns(for fields: Set<String>) -> [ScratchColumn]? {
        var columns: Set<ScratchColumn> = []
        for field in fields {
            if field == "tls" {
                columns.formUnion([.proto, .captureSource])
            } else if KFL.flagProtocols(field) != nil {
                columns.insert(.proto)
            } else if let needed = byField[field] {
                columns.formUnion(needed)
            } else {
                return nil
            }
        }
        // `src.name` is filled as the endpoint's IP with no pod or service: it cannot share the endpoint with them.
        if columns.contains(.srcName), !columns.isDisjoint(with: [.srcPod, .srcService]) { return nil }
        if columns.contains(.dstName), !columns.isDisjoint(with: [.dstPod, .dstService]) { return nil }
        return allCases.filter(columns.contains)
    }

    private static let byField: [String: [ScratchColumn]] = [
        "timestamp": [.ts], "protocol": [.proto], "capture_source": [.captureSource], "method": [.method], "path": [.path],
        "status_code": [.status], "elapsed_time": [.latencyMs], "elapsedTime": [.latencyMs], "node_id": [.node],
        "gap": [.flags], "truncated": [.flags], "no_response": [.flags], "no_request": [.flags],
        "dns_request": [.proto, .flags], "dns_response": [.proto, .flags],
        "src.name": [.srcName], "dst.name": [.dstName], "src.namespace": [.srcNamespace], "dst.namespace": [.dstNamespace],
        "src.pod.name": [.srcPod], "src.service.name": [.srcService], "dst.pod.name": [.dstPod], "dst.service.name": [.dstService],
    ]

    /// Copies result column `index` of the current row into `call`; `recent` caches this column's text values.
    func fill(_ call: inout Call, from row: borrowing RawStatement, _ index: Int32, _ recent: inout RecentTexts) {
        switch self {
        case .ts: call.ts = row.int64(index)
        case .proto: call.proto = row.text(index, &recent)
        case .captureSource: call.captureSource = CaptureSource(rawValue: row.text(index, &recent)) ?? .ebpf
        case .method: call.method = row.text(index, &recent)
        case .path: call.path = row.text(index, &recent)
        case .status: call.status = Int(row.int64(index))
        case .latencyMs: call.latencyMs = row.double(index)
        case .node: call.node = row.text(index, &recent)
        case .flags: call.flags = CallFlags(bits: Int(row.int64(index)))
        case .srcName: call.src.ip = row.text(index, &recent)
        case .dstName: call.dst.ip = row.text(index, &recent)
        case .srcNamespace: call.src.namespace = row.text(index, &recent)
        case .dstNamespace: call.dst.namespace = row.text(index, &recent)
        case .srcPod: call.src.pod = row.text(index, &recent)
        case .srcService: call.src.service = row.text(index, &recent)
        case .dstPod: call.dst.pod = row.text(index, &recent)
        case .dstService: call.dst.service = row.text(index, &recent)
        }
    }
}

/// What a scan reads of each candidate row to evaluate the residual.
enum ScanAccess {
    /// Nothing: the SQL answers the whole filter.
    case none
    /// These columns, into a scratch call.
    case columns([ScratchColumn])
    /// The stored record, decoded.
    case record
}
