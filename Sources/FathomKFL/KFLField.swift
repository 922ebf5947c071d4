import FathomModel

/// One filterable field: the single description the parser, type checker, store planner, API field list and MCP tool
/// descriptions all read.
public struct KFLField: Sendable {
    /// The KFL2 (Kubeshark CEL) name, e.g. `status_code`.
    public let name: String
    /// Other accepted spellings, KFL1's first (e.g. `response.status`).
    public let aliases: [String]
    public let type: KFLType
    /// Which part of a call the field describes: "network", "http", "dns", "kubernetes", …
    public let group: String
    /// One line for humans and AI assistants.
    public let summary: String
    /// An expression using the field.
    public let example: String
    /// Operators a store can answer from an index for this field; empty when it is only evaluated in Swift.
    public let indexedOperators: Set<KFLPlan.Operator>
    /// Reads the field from a call in place; a missing value reads as the type's default.
    let read: @Sendable (UnsafePointer<Call>) -> KFLValue
    /// For map fields: reads one key without building the map (`request.headers["x"]`).
    let lookup: (@Sendable (UnsafePointer<Call>, String) -> KFLValue?)?

    /// The field's value on `call` (its type's default when the call does not carry it).
    public func value(of call: Call) -> KFLValue { withUnsafePointer(to: call) { read($0) } }

    init(
        _ name: String, aliases: [String] = [], _ type: KFLType, group: String, _ summary: String, example: String,
        indexed: Set<KFLPlan.Operator> = [], lookup: (@Sendable (UnsafePointer<Call>, String) -> KFLValue?)? = nil,
        read: @escaping @Sendable (UnsafePointer<Call>) -> KFLValue
    ) {
        self.read = read
        self.lookup = lookup
        self.name = name
        self.aliases = aliases
        self.type = type
        self.group = group
        self.summary = summary
        self.example = example
        self.indexedOperators = indexed
    }
}

extension KFLField {
    static let equality: Set<KFLPlan.Operator> = [.equal, .in]
    static let ordered: Set<KFLPlan.Operator> = [.equal, .in, .less, .lessOrEqual, .greater, .greaterOrEqual]

    static func string(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        indexed: Set<KFLPlan.Operator> = [], _ read: @escaping @Sendable (UnsafePointer<Call>) -> String
    ) -> KFLField {
        KFLField(name, aliases: aliases, .string, group: group, summary, example: example, indexed: indexed) {
            .string(read($0))
        }
    }

    static func int(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        indexed: Set<KFLPlan.Operator> = [], _ read: @escaping @Sendable (UnsafePointer<Call>) -> Int64
    ) -> KFLField {
        KFLField(name, aliases: aliases, .int, group: group, summary, example: example, indexed: indexed) {
            .int(read($0))
        }
    }

    static func bool(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        indexed: Set<KFLPlan.Operator> = [], _ read: @escaping @Sendable (UnsafePointer<Call>) -> Bool
    ) -> KFLField {
        KFLField(name, aliases: aliases, .bool, group: group, summary, example: example, indexed: indexed) {
            .bool(read($0))
        }
    }

    static func strings(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        _ read: @escaping @Sendable (UnsafePointer<Call>) -> [String]
    ) -> KFLField {
        KFLField(name, aliases: aliases, .list(.string), group: group, summary, example: example) {
            .list(read($0).map(KFLValue.string))
        }
    }

    /// A map(string, string) of headers, lowercase name → value (the first of a name wins); `headers["x"]` scans the
    /// call's headers in place, comparing names without regard to ASCII case.
    static func headers(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        _ read: @escaping @Sendable (UnsafePointer<Call>) -> [Header]?
    ) -> KFLField {
        KFLField(
            name, aliases: aliases, .map(.string, .string), group: group, summary, example: example,
            lookup: { call, key in
                guard let headers = read(call) else { return nil }
                for header in headers where asciiEqualIgnoringCase(header.name, key) { return .string(header.value) }
                return nil
            },
            read: { call in
                var entries: [KFLValue: KFLValue] = [:]
                for header in read(call) ?? [] {
                    let key = KFLValue.string(asciiLowercased(header.name))
                    if entries[key] == nil { entries[key] = .string(header.value) }
                }
                return .map(entries)
            })
    }

    /// A map(string, string) read from name/value pairs; the first pair of a name wins.
    static func pairs(
        _ name: String, aliases: [String] = [], group: String, _ summary: String, example: String,
        _ read: @escaping @Sendable (UnsafePointer<Call>) -> [(name: String, value: String)]
    ) -> KFLField {
        KFLField(
            name, aliases: aliases, .map(.string, .string), group: group, summary, example: example,
            lookup: { call, key in
                read(call).first { utf8Equal($0.name, key) }
                    .map { .string($0.value) }
            },
            read: { call in
                var entries: [KFLValue: KFLValue] = [:]
                for pair in read(call) {
                    let key = KFLValue.string(pair.name)
                    if entries[key] == nil { entries[key] = .string(pair.value) }
                }
                return .map(entries)
            })
    }
}

/// Compares ASCII letters without regard to case, other bytes exactly; no allocation.
func asciiEqualIgnoringCase(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { left in
        b.withUTF8 { right in
            guard left.count == right.count else { return false }
            for index in 0..<left.count where left[index] != right[index] {
                let x = left[index] | 0x20
                guard x == right[index] | 0x20, x >= UInt8(ascii: "a"), x <= UInt8(ascii: "z") else { return false }
            }
            return true
        }
    }
}

func asciiLowercased(_ text: String) -> String {
    guard text.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return text }
    return String(decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }, as: UTF8.self)
}
