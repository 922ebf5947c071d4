/// Where a packet or a call came from. The raw values are the names KFL's `capture_source` compares against.
public enum CaptureSource: String, Codable, Sendable, CaseIterable {
    case ebpf
    case ebpfTLS = "ebpf_tls"
    case pcap = "af_packet"
}

/// Direction relative to the local socket (eBPF) or the interface (pcap).
public enum PacketDirection: UInt8, Codable, Sendable {
    case unknown = 0
    case inbound = 1
    case outbound = 2
}

/// pcap LINKTYPE_* values the project reads and writes.
public enum LinkType {
    public static let ethernet: UInt16 = 1
    public static let rawIP: UInt16 = 101
    public static let linuxCooked: UInt16 = 113
    public static let linuxCookedV2: UInt16 = 276
    public static let loopbackBSD: UInt16 = 0  // DLT_NULL
    public static let ipv4: UInt16 = 228
    public static let ipv6: UInt16 = 229
}

/// Everything known about one captured packet besides its bytes. A plain value: building one never allocates.
public struct PacketMetadata: Sendable, Equatable {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    public var timestampNanoseconds: UInt64
    /// Length on the wire; the captured bytes may be fewer (snap length).
    public var originalLength: UInt32
    /// pcap LINKTYPE of the bytes.
    public var linkType: UInt16
    public var source: CaptureSource
    public var direction: PacketDirection
    /// Kernel ifindex, 0 when unknown.
    public var interfaceIndex: UInt32
    /// cgroup v2 id of the local socket's cgroup, 0 when unknown (pcap).
    public var cgroupID: UInt64
    /// `bpf_get_socket_cookie` of the local socket, 0 when unknown (pcap).
    public var socketCookie: UInt64
    /// The process (tgid) that sent or received the data, when known (TLS plaintext); 0 otherwise.
    public var processID: UInt32 = 0

    public init(
        timestampNanoseconds: UInt64, originalLength: UInt32, linkType: UInt16, source: CaptureSource,
        direction: PacketDirection = .unknown, interfaceIndex: UInt32 = 0, cgroupID: UInt64 = 0,
        socketCookie: UInt64 = 0
    ) {
        self.timestampNanoseconds = timestampNanoseconds
        self.originalLength = originalLength
        self.linkType = linkType
        self.source = source
        self.direction = direction
        self.interfaceIndex = interfaceIndex
        self.cgroupID = cgroupID
        self.socketCookie = socketCookie
    }
}

/// Where capture delivers packets: the continuous recording, and later the live dissector.
/// Called from the capture thread only; `packet` is valid for the duration of the call.
public protocol PacketSink: AnyObject {
    func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer)
    /// Called when the capture thread is idle or on its timer: a chance to flush buffers and rotate by age.
    func tick(nowNanoseconds: UInt64)
}
