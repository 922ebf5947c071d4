import ArgumentParser
import FathomAgent
import FathomAttribution

/// `fathom agent`'s Kubernetes, process and pod-targeting options.
struct AgentAttributionOptions: ParsableArguments {
    @Option(help: "Kubeconfig file of the cluster to name pods and services from. Default: the in-cluster service account when KUBERNETES_SERVICE_HOST is set, else none.")
    var kubeconfig: String?
    @Option(help: "Context of the kubeconfig (default: its current-context).") var kubeContext: String?
    @Option(help: "proc filesystem processes are read from (/host/proc in the DaemonSet).") var procRoot = "/proc"
    @Option(name: .customLong("include-namespace"), help: "Capture only pods of this namespace (repeatable).")
    var includeNamespaces: [String] = []
    @Option(name: .customLong("exclude-namespace"), help: "Never capture pods of this namespace (repeatable).")
    var excludeNamespaces: [String] = []
    @Option(name: .customLong("include-label"), help: "Capture only pods matching this label selector, e.g. app=web,tier!=db (repeatable).")
    var includeLabels: [String] = []
    @Option(name: .customLong("exclude-label"), help: "Never capture pods matching this label selector (repeatable).")
    var excludeLabels: [String] = []
    @Option(name: .customLong("include-pod"), help: "Capture only pods whose name matches this regular expression (repeatable).")
    var includePods: [String] = []
    @Option(name: .customLong("exclude-pod"), help: "Never capture pods whose name matches this regular expression (repeatable).")
    var excludePods: [String] = []

    func configuration() throws -> AttributionConfiguration {
        var c = AttributionConfiguration()
        c.kubeconfigPath = kubeconfig
        c.kubeContext = kubeContext
        c.procRoot = procRoot
        do {
            c.targets.includeNamespaces = includeNamespaces
            c.targets.excludeNamespaces = excludeNamespaces
            c.targets.includeLabels = try includeLabels.map(LabelSelector.init)
            c.targets.excludeLabels = try excludeLabels.map(LabelSelector.init)
            c.targets.includePods = try includePods.map(PodNamePattern.init)
            c.targets.excludePods = try excludePods.map(PodNamePattern.init)
        } catch {
            throw ValidationError("\(error)")
        }
        return c
    }
}
