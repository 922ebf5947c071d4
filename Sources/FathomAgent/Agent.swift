import FathomCapture
import FathomModel
import FathomPcapCapture
import FathomRecording
import FathomStore
import Foundation
import Hummingbird
import Logging

/// `fathom agent`: captures into the continuous recording and serves the HTTP API until SIGINT/SIGTERM.
public final class Agent {
    public let configuration: AgentConfiguration
    public let status: AgentStatus
    private let capture: PacketCapture
    private let tls: AgentTLS
    private let store: SegmentStore
    private let dissection: LiveDissection
    private let calls: CallsDatabase
    private let attribution: AgentAttribution
    private let snapshots: Snapshots
    private let mcpSessions: MCPSessions
    private let logger: Logger

    /// Opens the recording and starts capturing. Throws a message fit for the user when neither is possible.
    public init(configuration: AgentConfiguration, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        var recording = SegmentStore.Configuration(directory: configuration.dataDirectory + "/recording")
        recording.segmentBytes = UInt64(configuration.segmentBytes)
        recording.segmentSeconds = UInt64(configuration.segmentSeconds)
        recording.retentionBytes = UInt64(configuration.retentionBytes)
        let store = try SegmentStore(configuration: recording)
        self.store = store
        calls = try CallsDatabase(path: configuration.dataDirectory + "/calls.db")
        attribution = try AgentAttribution(configuration: configuration, logger: logger)
        dissection = LiveDissection(
            catalog: store.catalog, recording: store.statistics, calls: calls, node: configuration.nodeName,
            ownEndpoint: (configuration.listenHost, configuration.listenPort), attribution: attribution.makeIngest(),
            feedBufferBytes: recording.writeBufferBytes, readsDirectly: recording.directWrites, logger: logger)
        dissection.setEnabled(configuration.liveDissection)
        store.tap = dissection.feed
        snapshots = try Snapshots(
            configuration: configuration, catalog: store.catalog, attribution: attribution, logger: logger)
        mcpSessions = MCPSessions(token: configuration.bearerToken)
        let features = KernelFeatures.probe()
        let (capture, fallbackReason) = try Self.startCapture(configuration, sink: store, logger: logger)
        self.capture = capture
        tls = AgentTLS(packetCapture: capture, configuration: configuration, logger: logger)
        status = AgentStatus(features: features, captureSource: capture.source, fallbackReason: fallbackReason,
                             processEvents: attribution.processEvents)
        attribution.start(capture: capture)
        dissection.start()
    }

    private static func startCapture(
        _ configuration: AgentConfiguration, sink: PacketSink, logger: Logger
    ) throws -> (PacketCapture, String?) {
        func bpf() throws -> PacketCapture {
            var bpfConfiguration = BPFCaptureConfiguration()
            bpfConfiguration.snapLength = configuration.snapLength
            bpfConfiguration.interfaces = configuration.interfaces
            let capture = try BPFCapture(configuration: bpfConfiguration, logger: logger)
            for (paths, target) in [(configuration.includeCgroups, CgroupTarget.include), (configuration.excludeCgroups, .exclude)] {
                for path in paths {
                    let absolute = path.hasPrefix("/") ? path : capture.cgroupRoot + "/" + path
                    guard let id = CgroupV2.cgroupID(path: absolute) else {
                        throw AgentError("no cgroup at \(absolute)")
                    }
                    try capture.setTarget(cgroupID: id, target)
                }
            }
            try capture.start(sink: sink)
            return capture
        }
        func pcap() throws -> PacketCapture {
            if !configuration.includeCgroups.isEmpty || !configuration.excludeCgroups.isEmpty {
                logger.warning("libpcap cannot tell cgroups apart: --include-cgroup and --exclude-cgroup are ignored")
            }
            var pcapConfiguration = PcapCaptureConfiguration()
            pcapConfiguration.snapLength = Int32(configuration.snapLength)
            let capture = try PcapCapture(configuration: pcapConfiguration, logger: logger)
            try capture.start(sink: sink)
            return capture
        }
        switch configuration.captureMode {
        case .ebpf:
            return (try bpf(), nil)
        case .pcap:
            return (try pcap(), "--capture pcap was asked for")
        case .auto:
            do {
                return (try bpf(), nil)
            } catch {
                let reason = Self.describe(error)
                logger.warning("eBPF capture unavailable, falling back to libpcap: \(reason)")
                return (try pcap(), reason)
            }
        }
    }

    static func describe(_ error: Error) -> String {
        (error as? BPFCaptureError)?.summary ?? "\(error)"
    }

    /// Serves until SIGINT or SIGTERM, then detaches every program, flushes the recording and returns.
    public func run() async throws {
        defer { shutdown() }
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.listenHost, port: configuration.listenPort), serverName: "fathom"),
            onServerRunning: { [mcpSessions, configuration] channel in
                await mcpSessions.setAgent(host: configuration.listenHost, port: channel.localAddress?.port ?? configuration.listenPort)
            },
            logger: logger)
        try await app.runService()
    }

    func shutdown() {
        attribution.stop()
        tls.stop()
        capture.stop()
        store.close()
        dissection.stop()
        snapshots.close()
        logger.info("capture detached, recording flushed, dissection finished")
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = AgentRoutes(
            status: status, metricSources: [capture, RecordingMetrics(store.statistics), dissection, tls, attribution],
            bearerToken: configuration.bearerToken, setPaused: { [capture] in capture.setPaused($0) },
            api: (
                LocalAPI(
                    node: configuration.nodeName, status: status, calls: calls, recording: store.statistics,
                    dissection: dissection, showSecrets: configuration.showSecrets), dissection
            ), snapshots: snapshots,
            mcp: MCPEndpoint(sessions: mcpSessions, allowedOrigins: configuration.mcpAllowedOrigins)
        ).router()
        tls.addRoutes(to: router)
        AgentRoutes.addWorkloads(to: router, attribution: attribution)
        return router
    }
}

/// What /healthz reports: the chosen paths and why.
public struct AgentStatus: Sendable, Codable {
    public var features: KernelFeatures
    public var captureSource: CaptureSource
    /// Why eBPF is not in use, when it is not.
    public var fallbackReason: String?
    /// How processes are learned for attribution: "ebpf" (exec/exit/socket events), or "/proc only: why".
    public var processEvents: String?
}
