import FathomCapture
import FathomModel
import Foundation
import Hummingbird
import Logging

/// TLS plaintext capture as the agent runs it: started beside eBPF packet capture (it shares its rings and
/// recording), absent with the reason when packet capture is libpcap, TLS is switched off, or the kernel refuses.
final class AgentTLS: MetricsSource, Sendable {
    let capture: TLSCapture?
    /// Why TLS plaintext is not captured, when it is not.
    let unavailableReason: String?

    init(packetCapture: PacketCapture, configuration: AgentConfiguration, logger: Logger) {
        guard configuration.tls else {
            (capture, unavailableReason) = (nil, "--tls off was asked for")
            return
        }
        guard let bpf = packetCapture as? BPFCapture else {
            (capture, unavailableReason) = (nil, "TLS capture needs eBPF packet capture; it runs on \(packetCapture.source.rawValue)")
            logger.warning("TLS plaintext capture off: packet capture is not eBPF")
            return
        }
        var tlsConfiguration = TLSCaptureConfiguration()
        tlsConfiguration.maxBytesPerCall = configuration.tlsMaxBytesPerCall
        do {
            let tls = try TLSCapture(sharing: bpf, configuration: tlsConfiguration, logger: logger)
            try tls.start()
            (capture, unavailableReason) = (tls, nil)
        } catch {
            let reason = Agent.describe(error)
            logger.warning("TLS plaintext capture unavailable: \(reason)")
            (capture, unavailableReason) = (nil, reason)
        }
    }

    /// Detaches the probes; call before packet capture stops so its drainer takes the last plaintext.
    func stop() { capture?.stop() }

    func metrics() -> [Metric] { capture?.metrics() ?? [] }

    /// `GET /tls/targets`: every process × TLS library found, hooked or not and why.
    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/tls/targets") { [self] _, _ in
            TLSTargetsReport(enabled: capture != nil, reason: unavailableReason, targets: capture?.targets() ?? [])
        }
    }
}

/// The body of `GET /tls/targets` and the output of `fathom tls-status --json`.
public struct TLSTargetsReport: ResponseEncodable, Decodable, Sendable {
    /// Whether TLS plaintext capture runs.
    public var enabled: Bool
    /// Why not, when it does not.
    public var reason: String?
    public var targets: [TLSTarget]

    public init(enabled: Bool, reason: String?, targets: [TLSTarget]) {
        self.enabled = enabled
        self.reason = reason
        self.targets = targets
    }
}
