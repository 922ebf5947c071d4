import FathomModel

/// The transport protocols the engine follows.
public enum TransportProtocol: UInt8, Sendable {
    case tcp = 6
    case udp = 17
}

/// TCP header flag bits.
public struct TCPFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}

/// The L3/L4 facts of one packet. The payload is a range of the packet's own bytes (no copy).
public struct DecodedPacket: Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var transport: TransportProtocol
    public var flags: TCPFlags
    public var sequence: UInt32
    public var acknowledgment: UInt32
    /// Offset of the L4 payload inside the packet bytes.
    public var payloadOffset: Int
    /// Payload bytes present in the capture.
    public var payloadLength: Int
    /// Payload bytes on the wire (more than `payloadLength` when the snap length cut the packet).
    public var wirePayloadLength: Int
}

/// Why a packet was not decoded to TCP/UDP; each reason has its own counter.
public enum PacketDecodeFailure: Error, Sendable {
    case unsupportedLinkType
    case notIP
    case fragment
    case otherTransport
    case truncated
}

/// Decodes link layer → IPv4/IPv6 → TCP/UDP without copying.
public enum PacketDecoder {
    /// Decodes `bytes` captured with `linkType`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, linkType: UInt16) -> Result<DecodedPacket, PacketDecodeFailure> {
        switch networkLayerOffset(bytes, linkType: linkType) {
        case .success(let offset): return decodeIP(bytes, at: offset)
        case .failure(let failure): return .failure(failure)
        }
    }

    /// Where the IP header starts for `linkType`.
    static func networkLayerOffset(_ bytes: UnsafeRawBufferPointer, linkType: UInt16) -> Result<Int, PacketDecodeFailure> {
        switch linkType {
        case LinkType.ethernet:
            guard var etherType = bytes.u16(12) else { return .failure(.truncated) }
            var offset = 14
            var tags = 0
            // 802.1Q / 802.1ad tags (at most two, QinQ).
            while etherType == 0x8100 || etherType == 0x88a8, tags < 2 {
                guard let inner = bytes.u16(offset + 2) else { return .failure(.truncated) }
                etherType = inner
                offset += 4
                tags += 1
            }
            return etherType == 0x0800 || etherType == 0x86dd ? .success(offset) : .failure(.notIP)
        case LinkType.rawIP, LinkType.ipv4, LinkType.ipv6:
            return .success(0)
        case LinkType.linuxCooked:
            guard let proto = bytes.u16(14) else { return .failure(.truncated) }
            return proto == 0x0800 || proto == 0x86dd ? .success(16) : .failure(.notIP)
        case LinkType.linuxCookedV2:
            guard let proto = bytes.u16(0), bytes.count >= 20 else { return .failure(.truncated) }
            return proto == 0x0800 || proto == 0x86dd ? .success(20) : .failure(.notIP)
        case LinkType.loopbackBSD:
            // The address family is in the capturing host's byte order: accept both.
            guard let raw = bytes.u32(0) else { return .failure(.truncated) }
            let family = raw > 0xffff ? raw.byteSwapped : raw
            switch family {
            case 2, 24, 28, 30: return .success(4)
            default: return .failure(.notIP)
            }
        default:
            return .failure(.unsupportedLinkType)
        }
    }

    /// Decodes the IP header at `offset` and the TCP/UDP header after it.
    static func decodeIP(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Result<DecodedPacket, PacketDecodeFailure> {
        guard let first = bytes.u8(offset) else { return .failure(.truncated) }
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0f) * 4
            guard headerLength >= 20, let totalLength = bytes.u16(offset + 2),
                let fragmentField = bytes.u16(offset + 6), let proto = bytes.u8(offset + 9),
                let source = IPAddress(bytes, at: offset + 12, ipv6: false),
                let destination = IPAddress(bytes, at: offset + 16, ipv6: false),
                bytes.count >= offset + headerLength
            else { return .failure(.truncated) }
            // More-fragments set or a non-zero offset: a piece of a datagram; not reassembled.
            if fragmentField & 0x3fff != 0 { return .failure(.fragment) }
            let wireLength = Int(totalLength) - headerLength
            guard wireLength >= 0 else { return .failure(.truncated) }
            return decodeTransport(
                bytes, proto: proto, at: offset + headerLength, wireLength: wireLength, source: source,
                destination: destination)
        case 6:
            guard let payloadLength = bytes.u16(offset + 4), var next = bytes.u8(offset + 6),
                let source = IPAddress(bytes, at: offset + 8, ipv6: true),
                let destination = IPAddress(bytes, at: offset + 24, ipv6: true)
            else { return .failure(.truncated) }
            var cursor = offset + 40
            var remaining = Int(payloadLength)
            var extensions = 0
            while extensions < 8 {
                switch next {
                case 0, 43, 60:  // hop-by-hop, routing, destination options
                    guard let nextHeader = bytes.u8(cursor), let length = bytes.u8(cursor + 1) else {
                        return .failure(.truncated)
                    }
                    let size = (Int(length) + 1) * 8
                    next = nextHeader
                    cursor += size
                    remaining -= size
                case 51:  // authentication header: length in 4-byte units, minus 2
                    guard let nextHeader = bytes.u8(cursor), let length = bytes.u8(cursor + 1) else {
                        return .failure(.truncated)
                    }
                    let size = (Int(length) + 2) * 4
                    next = nextHeader
                    cursor += size
                    remaining -= size
                case 44:
                    return .failure(.fragment)
                default:
                    return decodeTransport(
                        bytes, proto: next, at: cursor, wireLength: remaining, source: source,
                        destination: destination)
                }
                extensions += 1
                if remaining < 0 { return .failure(.truncated) }
            }
            return .failure(.otherTransport)
        default:
            return .failure(.notIP)
        }
    }

    static func decodeTransport(
        _ bytes: UnsafeRawBufferPointer, proto: UInt8, at offset: Int, wireLength: Int, source: IPAddress,
        destination: IPAddress
    ) -> Result<DecodedPacket, PacketDecodeFailure> {
        switch proto {
        case TransportProtocol.tcp.rawValue:
            guard let sourcePort = bytes.u16(offset), let destinationPort = bytes.u16(offset + 2),
                let sequence = bytes.u32(offset + 4), let acknowledgment = bytes.u32(offset + 8),
                let dataOffset = bytes.u8(offset + 12), let flags = bytes.u8(offset + 13)
            else { return .failure(.truncated) }
            let headerLength = Int(dataOffset >> 4) * 4
            guard headerLength >= 20, wireLength >= headerLength, bytes.count >= offset + headerLength else {
                return .failure(.truncated)
            }
            let payloadOffset = offset + headerLength
            let wirePayload = wireLength - headerLength
            return .success(
                DecodedPacket(
                    source: source, destination: destination, sourcePort: sourcePort,
                    destinationPort: destinationPort, transport: .tcp, flags: TCPFlags(rawValue: flags),
                    sequence: sequence, acknowledgment: acknowledgment, payloadOffset: payloadOffset,
                    payloadLength: min(wirePayload, bytes.count - payloadOffset), wirePayloadLength: wirePayload))
        case TransportProtocol.udp.rawValue:
            guard let sourcePort = bytes.u16(offset), let destinationPort = bytes.u16(offset + 2),
                let length = bytes.u16(offset + 4), bytes.count >= offset + 8
            else { return .failure(.truncated) }
            // The UDP length wins over the IP one when smaller (Ethernet padding); 0 means "the rest" (jumbograms).
            let wirePayload = length >= 8 ? min(Int(length), wireLength) - 8 : wireLength - 8
            guard wirePayload >= 0 else { return .failure(.truncated) }
            let payloadOffset = offset + 8
            return .success(
                DecodedPacket(
                    source: source, destination: destination, sourcePort: sourcePort,
                    destinationPort: destinationPort, transport: .udp, flags: [], sequence: 0, acknowledgment: 0,
                    payloadOffset: payloadOffset, payloadLength: min(wirePayload, bytes.count - payloadOffset),
                    wirePayloadLength: wirePayload))
        default:
            return .failure(.otherTransport)
        }
    }
}
