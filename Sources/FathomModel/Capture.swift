/// A packet capture backend (eBPF or libpcap) as the agent drives it.
public protocol PacketCapture: MetricsSource, Sendable {
    /// The capture source its packets carry.
    var source: CaptureSource { get }
    /// Starts delivering packets to `sink` from a capture thread of its own.
    func start(sink: PacketSink) throws
    /// Detaches from the kernel, drains what is already captured into the sink, then returns. Idempotent.
    func stop()
    /// Stops recording without detaching, or resumes.
    func setPaused(_ paused: Bool)
}

/// One Prometheus metric family.
public struct Metric: Sendable, Equatable {
    public enum Kind: String, Sendable { case counter, gauge }
    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [(labels: [(String, String)], value: Double)]

    public init(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }

    public init(_ name: String, _ kind: Kind, _ help: String, value: Double) {
        self.init(name, kind, help, [(labels: [], value: value)])
    }

    public static func == (a: Metric, b: Metric) -> Bool {
        a.name == b.name && a.kind == b.kind && a.help == b.help && a.samples.count == b.samples.count
            && zip(a.samples, b.samples).allSatisfy { x, y in
                x.value == y.value && x.labels.count == y.labels.count
                    && zip(x.labels, y.labels).allSatisfy { $0 == $1 }
            }
    }
}
