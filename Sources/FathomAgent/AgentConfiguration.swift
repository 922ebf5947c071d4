import Foundation

/// Everything `fathom agent` is told on its command line.
public struct AgentConfiguration: Sendable {
    public enum CaptureMode: String, Sendable, CaseIterable {
        /// eBPF, falling back to libpcap (with the reason logged) when eBPF cannot load or attach.
        case auto
        case ebpf
        case pcap
    }

    public var dataDirectory = "/var/lib/fathom"
    /// Names this node in call ids and answers: NODE_NAME (the DaemonSet sets it), else the host name.
    public var nodeName = ProcessInfo.processInfo.environment["NODE_NAME"] ?? ProcessInfo.processInfo.hostName
    /// Live dissection into the real-time calls database at start (switchable at run time).
    public var liveDissection = true
    /// Show Authorization, Cookie and API-key headers in answers instead of "[redacted]".
    public var showSecrets = false
    public var listenHost = "127.0.0.1"
    public var listenPort = 8421
    public var captureMode = CaptureMode.auto
    /// Interfaces captured with tc as well, for traffic that never reaches a local socket.
    public var interfaces: [String] = []
    public var retentionBytes = 2 << 30
    /// Disk budget of all snapshots together (DATA_DIR/snapshots), apart from the recording's.
    public var snapshotBudgetBytes = 4 << 30
    public var segmentBytes = 64 << 20
    public var segmentSeconds = 60
    public var snapLength: UInt32 = 65535
    /// cgroup v2 directories (absolute, or relative to the cgroup v2 mount) captured with everything below them; when
    /// any is given, nothing else is captured.
    public var includeCgroups: [String] = []
    /// cgroup v2 directories never captured, with everything below them.
    public var excludeCgroups: [String] = []
    /// TLS plaintext through uprobes, when packet capture is eBPF.
    public var tls = true
    /// Plaintext bytes copied per TLS call; the rest is counted as truncated.
    public var tlsMaxBytesPerCall: UInt32 = 1 << 20
    /// Required on every request but /healthz when set; required to listen anywhere but loopback.
    public var bearerToken: String?
    /// Where pod, service and process names come from (Kubernetes API, /proc) and which pods are captured.
    public var attribution = AttributionConfiguration()
    /// Origins besides loopback ones that browser MCP clients may call `/mcp` from (DNS-rebinding protection).
    public var mcpAllowedOrigins: [String] = []

    public init() {}

    /// Listening beyond this machine without a token would expose captured traffic to the network.
    public func validate() throws {
        let loopback = listenHost == "localhost" || listenHost == "::1" || listenHost.hasPrefix("127.")
        if !loopback && (bearerToken ?? "").isEmpty {
            throw AgentError(
                "listening on \(listenHost) needs a bearer token: pass --token or --token-file, or listen on 127.0.0.1")
        }
        guard (1...65535).contains(listenPort) || listenPort == 0 else {
            throw AgentError("port \(listenPort) is out of range")
        }
        guard segmentBytes >= 4096, segmentSeconds >= 1, retentionBytes >= segmentBytes else {
            throw AgentError("need --segment-bytes ≥ 4096, --segment-seconds ≥ 1 and --retention-bytes ≥ --segment-bytes")
        }
    }
}

public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
