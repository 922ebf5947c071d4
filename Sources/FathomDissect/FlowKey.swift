import FathomModel

/// A 5-tuple in canonical order (lower address/port first) so both directions, and both eBPF copies of traffic
/// between local sockets, find the same entry. TLS plaintext travels on the same 5-tuple as its ciphertext but is a
/// stream of its own, so it is keyed apart.
struct FlowKey: Hashable {
    var lowAddress: IPAddress
    var highAddress: IPAddress
    var lowPort: UInt16
    var highPort: UInt16
    var transport: TransportProtocol
    var plaintext = false

    /// The key of `packet` and whether the packet travels from the low end to the high end (direction 0).
    static func of(_ packet: DecodedPacket, source: CaptureSource) -> (key: FlowKey, direction: Int) {
        var (key, direction) = of(packet)
        key.plaintext = source == .ebpfTLS
        return (key, direction)
    }

    private static func of(_ packet: DecodedPacket) -> (key: FlowKey, direction: Int) {
        let sourceIsLow =
            packet.source < packet.destination
            || (packet.source == packet.destination && packet.sourcePort <= packet.destinationPort)
        if sourceIsLow {
            return (
                FlowKey(
                    lowAddress: packet.source, highAddress: packet.destination, lowPort: packet.sourcePort,
                    highPort: packet.destinationPort, transport: packet.transport), 0
            )
        }
        return (
            FlowKey(
                lowAddress: packet.destination, highAddress: packet.source, lowPort: packet.destinationPort,
                highPort: packet.sourcePort, transport: packet.transport), 1
        )
    }

    /// The endpoint that sends in `direction` (0: low → high).
    func sender(of direction: Int) -> Endpoint {
        direction == 0
            ? Endpoint(ip: lowAddress.description, port: Int(lowPort))
            : Endpoint(ip: highAddress.description, port: Int(highPort))
    }

    /// The direction the server most likely receives in, when nothing else told: a well-known port (< 1024) beats
    /// an ephemeral one, else the lower port is the server's.
    var likelyClientDirection: Int {
        let lowIsServer: Bool
        if (lowPort < 1024) != (highPort < 1024) {
            lowIsServer = lowPort < 1024
        } else if (lowPort >= 32768) != (highPort >= 32768) {
            lowIsServer = lowPort < 32768
        } else {
            lowIsServer = lowPort <= highPort
        }
        return lowIsServer ? 1 : 0
    }
}
