import Foundation

/// A Kubernetes label selector in its string form (`app=web,tier!=db,env in (prod,staging),!canary,team`): every
/// requirement must hold.
public struct LabelSelector: Sendable, Equatable, CustomStringConvertible {
    public enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public let requirements: [Requirement]
    public let description: String

    /// Parses the selector; throws a message naming the requirement it could not read.
    public init(_ text: String) throws {
        description = text
        var requirements: [Requirement] = []
        for part in Self.splitRequirements(text) {
            let requirement = part.trimmingSpaces
            guard !requirement.isEmpty else { continue }
            requirements.append(try Self.requirement(requirement, in: text))
        }
        guard !requirements.isEmpty else { throw LabelSelectorError("empty label selector `\(text)`") }
        self.requirements = requirements
    }

    /// Whether `labels` satisfy every requirement.
    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .isIn(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(labels[key].map(values.contains) ?? false)
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            }
        }
    }

    /// Splits at commas outside parentheses (`env in (a,b)` stays whole).
    static func splitRequirements(_ text: String) -> [Substring] {
        var parts: [Substring] = []
        var depth = 0
        var start = text.startIndex
        for index in text.indices {
            switch text[index] {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                parts.append(text[start..<index])
                start = text.index(after: index)
            default: break
            }
        }
        parts.append(text[start...])
        return parts
    }

    static func requirement(_ text: Substring, in whole: String) throws -> Requirement {
        func key(_ raw: Substring) throws -> String {
            let k = raw.trimmingSpaces
            guard !k.isEmpty, k.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) else {
                throw LabelSelectorError("bad label key `\(k)` in selector `\(whole)`")
            }
            return String(k)
        }
        if let range = text.range(of: "!=") {
            return .notEquals(try key(text[..<range.lowerBound]), String(text[range.upperBound...].trimmingSpaces))
        }
        if let range = text.range(of: "==") ?? text.range(of: "=") {
            return .equals(try key(text[..<range.lowerBound]), String(text[range.upperBound...].trimmingSpaces))
        }
        for (word, negated) in [(" notin ", true), (" in ", false)] {
            guard let range = text.range(of: word) else { continue }
            let list = text[range.upperBound...].trimmingSpaces
            guard list.hasPrefix("("), list.hasSuffix(")") else {
                throw LabelSelectorError("`\(word.trimmingSpaces)` needs a list in parentheses in selector `\(whole)`")
            }
            let values = Set(list.dropFirst().dropLast().split(separator: ",").map { String($0.trimmingSpaces) })
            let k = try key(text[..<range.lowerBound])
            return negated ? .notIn(k, values) : .isIn(k, values)
        }
        if text.hasPrefix("!") { return .doesNotExist(try key(text.dropFirst())) }
        return .exists(try key(text))
    }
}

public struct LabelSelectorError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension StringProtocol {
    var trimmingSpaces: SubSequence {
        var slice = self[...]
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return slice
    }
}
