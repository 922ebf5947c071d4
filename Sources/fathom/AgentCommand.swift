import ArgumentParser
import FathomAgent
import Foundation
import Logging

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Capture this node's traffic into a continuous recording and serve the HTTP API.")

    @Option(help: "Where the recording and the databases live.") var dataDir = "/var/lib/fathom"
    @Option(help: "HOST:PORT of the HTTP API. Anything but loopback needs a token.") var listen = "127.0.0.1:8421"
    @Option(help: "auto (eBPF, else libpcap), ebpf or pcap.") var capture = AgentConfiguration.CaptureMode.auto
    @Option(help: "Comma-separated interfaces to capture with tc as well.") var interfaces = ""
    @Option(help: "Disk budget of the recording, bytes.") var retentionBytes = 2 << 30
    @Option(help: "Disk budget of all snapshots together, bytes.") var snapshotBudgetBytes = 4 << 30
    @Option(help: "Rotate a segment past this size, bytes.") var segmentBytes = 64 << 20
    @Option(help: "Rotate a segment past this age, seconds.") var segmentSeconds = 60
    @Option(help: "Bytes kept per packet (at most 65535).") var snapLength: UInt32 = 65535
    @Option(name: .customLong("include-cgroup"), help: "Capture only this cgroup v2 directory and below (repeatable).")
    var includeCgroups: [String] = []
    @Option(name: .customLong("exclude-cgroup"), help: "Never capture this cgroup v2 directory and below (repeatable).")
    var excludeCgroups: [String] = []
    @Option(help: "Node name in call ids and answers (default: $NODE_NAME, else the host name).") var nodeName: String?
    @Flag(help: "Start with live dissection off (switch it on with POST /dissection/enable).") var noDissection = false
    @Flag(help: "Show Authorization, Cookie and API-key headers in answers instead of redacting them.") var showSecrets = false
    @Option(help: "TLS plaintext capture through uprobes (with eBPF capture): on or off.") var tls = OnOff.on
    @Option(help: "Plaintext bytes copied per TLS call (at most 4 MiB); the rest is counted as truncated.")
    var tlsMaxBytesPerCall: UInt32 = 1 << 20
    @Option(help: "Bearer token required by the HTTP API.") var token: String?
    @Option(help: "File holding the bearer token.") var tokenFile: String?
    @OptionGroup var attribution: AgentAttributionOptions
    @Option(name: .customLong("mcp-allowed-origin"), help: "Origin (scheme://host[:port]) a browser MCP client may use /mcp from, besides loopback (repeatable).")
    var mcpAllowedOrigins: [String] = []

    func run() async throws {
        var logger = Logger(label: "fathom.agent")
        logger.logLevel = .info
        var configuration = AgentConfiguration()
        configuration.dataDirectory = dataDir
        (configuration.listenHost, configuration.listenPort) = try Self.parseListen(listen)
        configuration.captureMode = capture
        configuration.interfaces = interfaces.split(separator: ",").map(String.init)
        configuration.retentionBytes = retentionBytes
        configuration.segmentBytes = segmentBytes
        configuration.snapshotBudgetBytes = snapshotBudgetBytes
        configuration.segmentSeconds = segmentSeconds
        configuration.snapLength = snapLength
        if let nodeName { configuration.nodeName = nodeName }
        configuration.liveDissection = !noDissection
        configuration.showSecrets = showSecrets
        configuration.includeCgroups = includeCgroups
        configuration.excludeCgroups = excludeCgroups
        configuration.tls = tls == .on
        configuration.tlsMaxBytesPerCall = tlsMaxBytesPerCall
        configuration.attribution = try attribution.configuration()
        configuration.mcpAllowedOrigins = mcpAllowedOrigins
        configuration.bearerToken = try token ?? tokenFile.map {
            try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let agent: Agent
        do {
            agent = try Agent(configuration: configuration, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
        try await agent.run()
    }

    static func parseListen(_ value: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) else {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8421")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

extension AgentConfiguration.CaptureMode: ExpressibleByArgument {}

/// A switch given as `on` or `off`.
enum OnOff: String, ExpressibleByArgument {
    case on, off
}
