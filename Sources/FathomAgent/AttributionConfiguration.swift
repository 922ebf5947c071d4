import FathomAttribution
import Foundation

/// The agent's attribution and targeting options.
public struct AttributionConfiguration: Sendable {
    /// `--kubeconfig`: a kubeconfig file; nil means the in-cluster service account when KUBERNETES_SERVICE_HOST is
    /// set, else no cluster (local and DNS names only).
    public var kubeconfigPath: String?
    /// Context of the kubeconfig (default: its current-context).
    public var kubeContext: String?
    /// `--proc-root`: the proc filesystem processes are read from (`/host/proc` in the DaemonSet).
    public var procRoot = "/proc"
    /// Which pods are captured (`--include-namespace`, `--exclude-label`, …).
    public var targets = TargetRules()

    public init() {}

    /// The API to watch, or nil when none is configured. Throws when a kubeconfig is named but unusable; an
    /// in-cluster configuration that cannot be read is an error too (the pod is meant to reach its API).
    func kubeConfig(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KubeConfig? {
        if let kubeconfigPath {
            do {
                return try KubeConfig.load(path: kubeconfigPath, context: kubeContext)
            } catch {
                throw AgentError("--kubeconfig \(kubeconfigPath): \(error)")
            }
        }
        guard environment["KUBERNETES_SERVICE_HOST"] != nil else { return nil }
        do {
            return try KubeConfig.inCluster(environment: environment)
        } catch {
            throw AgentError("in-cluster Kubernetes configuration: \(error)")
        }
    }
}
