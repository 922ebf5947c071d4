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
    private let lock = NSCondition()
    private var state: State = .idle
    private var paused = false
    private var sink: PacketSink?
    private let linkType: UInt16

    private enum State { case idle, running, stopping, stopped }

    public init(configuration: PcapCaptureConfiguration, logger: Logger) throws {
        self.logger = logger
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(configuration.device, &errorBuffer) else {
            throw PcapCaptureError(description: "libpcap: \(String(cString: errorBuffer))")
        }
        self.handle = handle
        pcap_set_snaplen(handle, configuration.snapLength)
        pcap_set_buffer_size(handle, configuration.bufferBytes)
        pcap_set_timeout(handle, configuration.timeoutMilliseconds)
        _ = pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let rc = pcap_activate(handle)
        if rc < 0 {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            throw PcapCaptureError(description: "libpcap cannot capture on \(configuration.device): \(message)")
        }
        // Cooked v2 carries the ifindex and the packet type (outgoing or not) of every packet.
        if pcap_set_datalink(handle, Int32(DLT_LINUX_SLL2)) != 0 {
            logger.warning("libpcap: no Linux cooked v2 framing; directions will be unknown")
        }
        linkType = UInt16(truncatingIfNeeded: pcap_datalink(handle))
    }

    deinit {
        stop()
        pcap_close(handle)
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
            pcap_breakloop(handle)
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
        let context = Unmanaged.passUnretained(self).toOpaque().assumingMemoryBound(to: UInt8.self)
        while true {
            lock.lock()
            let stopping = state == .stopping
            lock.unlock()
            if stopping { break }
            // Returns after a timeout's worth of packets (or none): a chance to tick the sink.
            _ = pcap_dispatch(handle, -1, PcapCapture.onPacket, context)
            sink?.tick(nowNanoseconds: UInt64(Date().timeIntervalSince1970 * 1e9))
        }
        lock.lock()
        state = .stopped
        sink = nil
        lock.broadcast()
        lock.unlock()
    }

    private static let onPacket: pcap_handler = { user, header, bytes in
        guard let user, let header, let bytes else { return }
        let capture = Unmanaged<PcapCapture>.fromOpaque(UnsafeRawPointer(user)).takeUnretainedValue()
        capture.deliver(header.pointee, UnsafeRawBufferPointer(start: bytes, count: Int(header.pointee.caplen)))
    }

    @inline(__always)
    private func deliver(_ header: pcap_pkthdr, _ bytes: UnsafeRawBufferPointer) {
        if paused { return }
        var metadata = PacketMetadata(
            // Nanosecond precision was asked for: tv_usec holds nanoseconds.
            timestampNanoseconds: UInt64(header.ts.tv_sec) * 1_000_000_000 + UInt64(header.ts.tv_usec),
            originalLength: header.len, linkType: linkType, source: .pcap)
        if linkType == LinkType.linuxCookedV2, bytes.count >= 20 {
            // SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) address(8)
            metadata.interfaceIndex = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            metadata.direction = bytes[10] == 4 ? .outbound : .inbound  // PACKET_OUTGOING
        }
        counters.count(captured: bytes.count, original: header.len)
        sink?.append(metadata, bytes)
    }

    public func metrics() -> [Metric] {
        var stats = pcap_stat()
        let haveStats = pcap_stats(handle, &stats) == 0
        return counters.metrics(source: source) + [
            Metric("fathom_pcap_dropped_packets_total", .counter,
                   "Packets the kernel dropped because libpcap's buffer was full.",
                   value: haveStats ? Double(stats.ps_drop) : 0)
        ]
    }
}
