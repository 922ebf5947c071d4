import Foundation

/// Which pods to capture: `--include-namespace`, `--exclude-namespace`, `--include-label`, `--exclude-label`,
/// `--include-pod`, `--exclude-pod`. An exclude rule always wins. With include rules, a pod is captured only when it
/// matches every kind of include rule given (any namespace listed, and any selector, and any pod pattern); without,
/// everything not excluded is.
public struct TargetRules: Sendable {
    public var includeNamespaces: [String] = []
    public var excludeNamespaces: [String] = []
    public var includeLabels: [LabelSelector] = []
    public var excludeLabels: [LabelSelector] = []
    public var includePods: [PodNamePattern] = []
    public var excludePods: [PodNamePattern] = []

    public init() {}

    /// No rule at all: every pod is captured and the kernel maps stay empty.
    public var isEmpty: Bool {
        !hasIncludes && excludeNamespaces.isEmpty && excludeLabels.isEmpty && excludePods.isEmpty
    }

    /// Some include rule is given: whatever no rule includes (host processes too) is not captured.
    public var hasIncludes: Bool { !includeNamespaces.isEmpty || !includeLabels.isEmpty || !includePods.isEmpty }

    /// Whether a pod is captured, and the rule that decided it (in words, for `/targets`).
    public func decide(namespace: String, name: String, labels: [String: String]) -> (captured: Bool, reason: String) {
        if excludeNamespaces.contains(namespace) { return (false, "namespace \(namespace) is excluded (--exclude-namespace)") }
        if let selector = excludeLabels.first(where: { $0.matches(labels) }) {
            return (false, "labels match the excluded selector `\(selector)` (--exclude-label)")
        }
        if let pattern = excludePods.first(where: { $0.matches(name) }) {
            return (false, "name matches the excluded pattern `\(pattern)` (--exclude-pod)")
        }
        guard hasIncludes else { return (true, isEmpty ? "no targeting rules: every pod is captured" : "not excluded") }
        var reasons: [String] = []
        if !includeNamespaces.isEmpty {
            guard includeNamespaces.contains(namespace) else {
                return (false, "namespace \(namespace) is not among the included ones (--include-namespace)")
            }
            reasons.append("namespace \(namespace) is included")
        }
        if !includeLabels.isEmpty {
            guard let selector = includeLabels.first(where: { $0.matches(labels) }) else {
                return (false, "labels match no included selector (--include-label)")
            }
            reasons.append("labels match `\(selector)`")
        }
        if !includePods.isEmpty {
            guard let pattern = includePods.first(where: { $0.matches(name) }) else {
                return (false, "name matches no included pattern (--include-pod)")
            }
            reasons.append("name matches `\(pattern)`")
        }
        return (true, reasons.joined(separator: ", "))
    }
}

/// A pod-name regular expression (`--include-pod`, `--exclude-pod`), matched anywhere in the name unless anchored.
/// `@unchecked Sendable`: an NSRegularExpression is immutable once made and safe to match from any thread.
public struct PodNamePattern: @unchecked Sendable, CustomStringConvertible {
    public let description: String
    private let regex: NSRegularExpression

    public init(_ pattern: String) throws {
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw LabelSelectorError("bad pod name pattern `\(pattern)`: not a regular expression")
        }
        description = pattern
    }

    public func matches(_ name: String) -> Bool {
        regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }
}

/// What targeting decided for one pod, as `GET /targets` shows it.
public struct PodTarget: Sendable, Codable, Equatable {
    public var namespace: String
    public var pod: String
    public var uid: String
    public var node: String
    /// Its traffic is recorded (at its own sockets).
    public var captured: Bool
    public var reason: String
    /// The pod's cgroup on this node, when found.
    public var cgroupID: UInt64?
}

/// The kernel's view of targeting: a cgroup id and whether it (and everything below it) is included or excluded.
public enum TargetKind: String, Sendable, Codable {
    case include, exclude
}

extension TargetRules {
    /// Decides every pod of `pods` and the cgroup entries that enforce the decisions. `podCgroups` maps pod UIDs to
    /// their cgroup ids on this node. With include rules, an entry for cgroup id 0 (never a real cgroup) is always
    /// present, so the kernel captures nothing while no pod is included yet instead of everything.
    public func plan(pods: [Workload], podCgroups: [String: UInt64]) -> (pods: [PodTarget], cgroups: [UInt64: TargetKind]) {
        var targets: [PodTarget] = []
        var cgroups: [UInt64: TargetKind] = [:]
        if hasIncludes { cgroups[0] = .include }
        for pod in pods where pod.kind == .pod {
            var (captured, reason) = decide(namespace: pod.namespace, name: pod.name, labels: pod.labels)
            let cgroup = podCgroups[pod.uid]
            if let cgroup, !isEmpty {
                // Without include rules everything is captured anyway: only exclusions go into the map (an include
                // entry would switch the kernel to capturing included cgroups only).
                if !captured { cgroups[cgroup] = .exclude } else if hasIncludes { cgroups[cgroup] = .include }
            } else if cgroup == nil, !isEmpty {
                if captured && hasIncludes {
                    captured = false
                    reason += "; not captured yet: its cgroup is not found on this node"
                } else if !captured {
                    reason += "; its cgroup is not found on this node (nothing of it to capture here)"
                }
            }
            targets.append(PodTarget(namespace: pod.namespace, pod: pod.name, uid: pod.uid, node: pod.node,
                                     captured: captured, reason: reason, cgroupID: cgroup))
        }
        targets.sort { ($0.namespace, $0.pod) < ($1.namespace, $1.pod) }
        return (targets, cgroups)
    }
}
