import FathomModel

/// Builds Ethernet + IPv4/IPv6 + TCP/UDP packets around a payload: for decrypted TLS plaintext that must go through
/// the normal reassembly, for tests and for fuzz harnesses. Checksums are left zero (nothing here verifies them).
public enum SyntheticPacket {
    /// A TCP segment from `source` to `destination` ("10.0.0.1" or "fd00::1").
    public static func tcp(
        from source: IPAddress, _ sourcePort: UInt16, to destination: IPAddress, _ destinationPort: UInt16,
        sequence: UInt32, acknowledgment: UInt32 = 0, flags: TCPFlags, payload: [UInt8] = []
    ) -> [UInt8] {
        var transport: [UInt8] = []
        transport.reserveCapacity(20 + payload.count)
        append16(&transport, sourcePort)
        append16(&transport, destinationPort)
        append32(&transport, sequence)
        append32(&transport, acknowledgment)
        transport += [0x50, flags.rawValue, 0xff, 0xff, 0, 0, 0, 0]
        transport += payload
        return ethernetIP(from: source, to: destination, proto: TransportProtocol.tcp.rawValue, transport)
    }

    /// A UDP datagram.
    public static func udp(
        from source: IPAddress, _ sourcePort: UInt16, to destination: IPAddress, _ destinationPort: UInt16,
        payload: [UInt8]
    ) -> [UInt8] {
        var transport: [UInt8] = []
        append16(&transport, sourcePort)
        append16(&transport, destinationPort)
        append16(&transport, UInt16(truncatingIfNeeded: 8 + payload.count))
        append16(&transport, 0)
        transport += payload
        return ethernetIP(from: source, to: destination, proto: TransportProtocol.udp.rawValue, transport)
    }

    private static func ethernetIP(from source: IPAddress, to destination: IPAddress, proto: UInt8, _ transport: [UInt8]) -> [UInt8] {
        var packet: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]
        if source.isIPv6 {
            packet += [0x86, 0xdd, 0x60, 0, 0, 0]
            append16(&packet, UInt16(truncatingIfNeeded: transport.count))
            packet += [proto, 64]
            for address in [source, destination] {
                append32(&packet, UInt32(truncatingIfNeeded: address.high >> 32))
                append32(&packet, UInt32(truncatingIfNeeded: address.high))
                append32(&packet, UInt32(truncatingIfNeeded: address.low >> 32))
                append32(&packet, UInt32(truncatingIfNeeded: address.low))
            }
        } else {
            packet += [0x08, 0x00, 0x45, 0]
            append16(&packet, UInt16(truncatingIfNeeded: 20 + transport.count))
            packet += [0, 0, 0x40, 0, 64, proto, 0, 0]
            append32(&packet, UInt32(truncatingIfNeeded: source.low))
            append32(&packet, UInt32(truncatingIfNeeded: destination.low))
        }
        return packet + transport
    }

    private static func append16(_ bytes: inout [UInt8], _ value: UInt16) {
        bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
    }

    private static func append32(_ bytes: inout [UInt8], _ value: UInt32) {
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }
}

extension IPAddress {
    /// Parses dotted IPv4 or full/compressed IPv6 text; nil when malformed.
    public init?(_ text: String) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard let octet = UInt8(part) else { return nil }
                value = value << 8 | UInt32(octet)
            }
            self.init(ipv4: value)
            return
        }
        var halves = [text]
        if let range = text.firstRange(of: "::") {
            halves = [String(text[..<range.lowerBound]), String(text[range.upperBound...])]
            guard !halves[1].contains("::") else { return nil }
        }
        func groups(_ s: String) -> [UInt16]? {
            s.isEmpty ? [] : s.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0, radix: 16) }
                .reduce(into: [UInt16]?([])) { result, group in
                    if let group, result != nil { result?.append(group) } else { result = nil }
                }
        }
        guard let head = groups(halves[0]), let tail = halves.count == 2 ? groups(halves[1]) : [] else { return nil }
        let missing = 8 - head.count - tail.count
        guard halves.count == 2 ? missing >= 1 : missing == 0 else { return nil }
        let all = head + [UInt16](repeating: 0, count: halves.count == 2 ? missing : 0) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(all[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(all[i]) }
        self.init(ipv6High: high, low: low)
    }
}
