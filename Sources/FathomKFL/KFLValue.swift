/// A KFL (CEL) value. Timestamps are nanoseconds since the Unix epoch; durations are nanoseconds.
public enum KFLValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case timestamp(Int64)
    case duration(Int64)
    case list([KFLValue])
    case map([KFLValue: KFLValue])

    /// The value as KFL source text (strings quoted), used in plans and messages.
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .uint(let value): return "\(value)u"
        case .double(let value): return String(value)
        case .string(let value): return quoted(value)
        case .bytes(let value): return "b\"" + value.map { "\\x" + hex($0) }.joined() + "\""
        case .timestamp(let nanoseconds): return "timestamp(\"\(KFLTime.format(timestampNanoseconds: nanoseconds))\")"
        case .duration(let nanoseconds): return "duration(\"\(KFLTime.format(durationNanoseconds: nanoseconds))\")"
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .map(let entries):
            return "{" + entries.map { "\($0.key): \($0.value)" }.sorted().joined(separator: ", ") + "}"
        }
    }

    /// The type of this value (lists and maps report their element types when uniform, else `dyn`).
    public var type: KFLType {
        switch self {
        case .null: return .null
        case .bool: return .bool
        case .int: return .int
        case .uint: return .uint
        case .double: return .double
        case .string: return .string
        case .bytes: return .bytes
        case .timestamp: return .timestamp
        case .duration: return .duration
        case .list(let items): return .list(KFLType.common(items.map(\.type)))
        case .map(let entries): return .map(KFLType.common(entries.keys.map(\.type)), KFLType.common(entries.values.map(\.type)))
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}

private func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += "\\x" + hex(UInt8(scalar.value)) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}

/// The static type of a KFL expression.
public indirect enum KFLType: Sendable, Hashable, CustomStringConvertible {
    case null, bool, int, uint, double, string, bytes, timestamp, duration
    case list(KFLType)
    case map(KFLType, KFLType)
    /// Known only at run time (heterogeneous literals, values read out of `dyn`).
    case dyn

    /// CEL's spelling: `int`, `list(string)`, `map(string, string)`.
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .uint: return "uint"
        case .double: return "double"
        case .string: return "string"
        case .bytes: return "bytes"
        case .timestamp: return "timestamp"
        case .duration: return "duration"
        case .list(let element): return "list(\(element))"
        case .map(let key, let value): return "map(\(key), \(value))"
        case .dyn: return "dyn"
        }
    }

    /// The value a field of this type has when the call does not carry it (CEL's zero values).
    public var defaultValue: KFLValue {
        switch self {
        case .null, .dyn: return .null
        case .bool: return .bool(false)
        case .int: return .int(0)
        case .uint: return .uint(0)
        case .double: return .double(0)
        case .string: return .string("")
        case .bytes: return .bytes([])
        case .timestamp: return .timestamp(0)
        case .duration: return .duration(0)
        case .list: return .list([])
        case .map: return .map([:])
        }
    }

    var isNumeric: Bool { self == .int || self == .uint || self == .double }

    /// The one type all of `types` share, or `dyn` (an empty collection is `dyn`).
    static func common(_ types: [KFLType]) -> KFLType {
        guard let first = types.first else { return .dyn }
        return types.allSatisfy { $0 == first } ? first : .dyn
    }

    /// True when values of the two types can meet in `==`, a branch or an element position without a conversion.
    func isAssignable(to other: KFLType) -> Bool {
        if self == other || self == .dyn || other == .dyn { return true }
        switch (self, other) {
        case (.list(let a), .list(let b)): return a.isAssignable(to: b)
        case (.map(let ka, let va), .map(let kb, let vb)): return ka.isAssignable(to: kb) && va.isAssignable(to: vb)
        default: return false
        }
    }
}
