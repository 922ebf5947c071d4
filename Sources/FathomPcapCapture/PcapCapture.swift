internal import CFathomPcap
import FathomModel
import Foundation
import Logging

/// Settings of the libpcap fallback.
public struct PcapCaptureConfiguration: Sendable {
    /// `any` records every interface of the agent's network namespace.
    public var device = "any"
    public var snapLength: Int32 = 65535
    /// The kernel buffer libpcap's TPACKET_V3 ring uses.
    public var bufferBytes: Int32 = 64 << 20
    public var timeoutMilliseconds: Int32 = 10

    public init() {}
}

public struct PcapCaptureError: Error, CustomStringConvertible {
    public var description: String
}

/// The fallback capture path when eBPF cannot load: libpcap (TPACKET_V3) on the `any` device in Linux cooked v2
/// framing, which keeps the interface index and the direction of each packet. No cgroup or socket is known here.
public final class PcapCapture: PacketCapture, @unchecked Sendable {
    public let source = CaptureSource.pcap
    private let handle: OpaquePointer
    private let logger: Logger
    private let counters = CaptureCounters()
    /// Touched by the capture thread only; published after each dispatch.
    private var pending = CaptureCounters.Pending()
    private let lock = NSCondition()
    private var state: State = .idle
    private var paused = false
    private var sink: PacketSink?
    private let linkType: UInt16

    private enum State { case idle, running, stopping, stopped }

    public init(configuration: PcapCaptureConfiguration, logger: Logger) throws {
        self.logger = logger
        var error = [CChar](repeating: 0, count: 512)
        guard let handle = fathom_pcap_open_live(
            configuration.device, configuration.snapLength, configuration.bufferBytes,
            configuration.timeoutMilliseconds, &error, error.count)
        else {
            let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PcapCaptureError(description: "libpcap cannot capture on \(configuration.device): \(reason)")
        }
        self.handle = handle
        linkType = UInt16(truncatingIfNeeded: fathom_pcap_link_type(handle))
        if linkType != LinkType.linuxCookedV2 {
            logger.warning("libpcap: no Linux cooked v2 framing on \(configuration.device); directions will be unknown")
        }
    }

    deinit {
        stop()
        fathom_pcap_close(handle)
    }

    public func start(sink: PacketSink) throws {
        lock.lock()
        defer { lock.unlock() }
        guard state == .idle else { return }
        self.sink = sink
        state = .running
        let thread = Thread { [self] in self.run() }
        thread.name = "fathom-pcap"
        thread.start()
        logger.info("libpcap capture started", metadata: ["linktype": "\(linkType)"])
    }

    public func stop() {
        lock.lock()
        if state == .running {
            state = .stopping
            fathom_pcap_break(handle)
            while state != .stopped { lock.wait() }
        }
        lock.unlock()
    }

    public func setPaused(_ paused: Bool) {
        lock.lock()
        self.paused = paused
        lock.unlock()
    }

    private func run() {
        let context = Unmanaged.passUnretained(self).toOpaque()
        while true {
            lock.lock()
            let stopping = state == .stopping
            lock.unlock()
            if stopping { break }
            // Returns after a timeout's worth of packets (or none): a chance to tick the sink.
            _ = fathom_pcap_dispatch(handle, PcapCapture.onPacket, context)
            counters.publish(&pending)
            sink?.tick(nowNanoseconds: UInt64(Date().timeIntervalSince1970 * 1e9))
        }
        lock.lock()
        state = .stopped
        sink = nil
        lock.broadcast()
        lock.unlock()
    }

    private static let onPacket: fathom_pcap_handler = { context, timestamp, captured, original, bytes in
        guard let context, let bytes else { return }
        Unmanaged<PcapCapture>.fromOpaque(context)._withUnsafeGuaranteedRef {
            $0.deliver(timestamp, original, UnsafeRawBufferPointer(start: bytes, count: Int(captured)))
        }
    }

    @inline(__always)
    private func deliver(_ timestamp: UInt64, _ originalLength: UInt32, _ bytes: UnsafeRawBufferPointer) {
        if paused { return }
        var metadata = PacketMetadata(
            timestampNanoseconds: timestamp, originalLength: originalLength, linkType: linkType, source: .pcap)
        if linkType == LinkType.linuxCookedV2, bytes.count >= 20 {
            // SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) address(8)
            metadata.interfaceIndex = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            metadata.direction = bytes[10] == 4 ? .outbound : .inbound  // PACKET_OUTGOING
        }
        pending.count(captured: bytes.count, original: originalLength)
        sink?.append(metadata, bytes)
    }

    public func metrics() -> [Metric] {
        return counters.metrics(source: source) + [
            Metric("fathom_pcap_dropped_packets_total", .counter,
                   "Packets the kernel dropped because libpcap's buffer was full.",
                   value: Double(fathom_pcap_kernel_drops(handle)))
        ]
    }
}
