import FathomModel

/// Block types, option codes and Fathom's own per-packet option, shared by the writer and the reader.
enum Pcapng {
    static let sectionHeaderBlock: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionBlock: UInt32 = 1
    static let obsoletePacketBlock: UInt32 = 2
    static let simplePacketBlock: UInt32 = 3
    static let enhancedPacketBlock: UInt32 = 6
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    static let optionEndOfOptions: UInt16 = 0
    static let optionComment: UInt16 = 1  // opt_comment
    static let optionApplication: UInt16 = 4  // shb_userappl
    static let optionInterfaceName: UInt16 = 2  // if_name
    static let optionTimestampResolution: UInt16 = 9  // if_tsresol
    static let optionTimestampOffset: UInt16 = 14  // if_tsoffset
    static let optionPacketFlags: UInt16 = 2  // epb_flags / pack_flags
    /// Custom option, binary, may be copied by tools that rewrite the file (RFC draft "custom options").
    static let optionCustomBinaryCopyable: UInt16 = 2989

    /// Fixed part of an EPB before the packet bytes: type, length, interface id, timestamp (2), captured, original.
    static let enhancedPacketHeaderLength = 28
    /// epb_flags (8) + Fathom's custom option (4 header + 4 PEN + 24 payload) + end of options (4).
    static let enhancedPacketOptionsLength = 8 + 4 + 4 + FathomPacketOption.encodedLength + 4
    /// Everything an EPB costs besides the padded packet bytes.
    static let enhancedPacketOverhead = enhancedPacketHeaderLength + enhancedPacketOptionsLength + 4
    /// Fathom's process option (4 header + 4 PEN + 8 payload), present only when the process is known.
    static let processOptionLength = 4 + 4 + FathomProcessOption.encodedLength

    /// Rounds a length up to the 32-bit boundary pcapng aligns every field to.
    @inline(__always)
    static func padded(_ length: Int) -> Int { (length + 3) & ~3 }

    /// The if_name Fathom gives the interface of each capture source, e.g. "fathom-ebpf".
    static func interfaceName(for source: CaptureSource) -> String { "fathom-" + source.rawValue }

    /// epb_flags bits 0-1: 01 inbound, 10 outbound, 00 unknown.
    @inline(__always)
    static func packetFlags(for direction: PacketDirection) -> UInt32 { UInt32(direction.rawValue) & 0b11 }

    static func direction(fromPacketFlags flags: UInt32) -> PacketDirection {
        switch flags & 0b11 {
        case 1: .inbound
        case 2: .outbound
        default: .unknown
        }
    }
}

/// The metadata pcapng has no standard place for, carried in a custom EPB option (code 2989, binary, copyable).
///
/// The option is tagged with Private Enterprise Number 32473, the number RFC 5612 reserves for documentation and
/// examples: Fathom has no IANA number of its own, and 32473 will never collide with a real vendor's options.
/// Payload (24 bytes, in the section's byte order): version u8 (1), capture source u8 (1 ebpf, 2 ebpf_tls,
/// 3 af_packet), reserved u16 (0), ifindex u32, cgroup id u64, socket cookie u64. Readers ignore versions they do
/// not know, and a later version may only grow the payload.
/// A second custom option (same PEN), written only on packets whose process is known (TLS plaintext): a tag byte
/// in place of FathomPacketOption's version, three zero bytes, then the pid.
enum FathomProcessOption {
    static let tag: UInt8 = 0x81
    static let encodedLength = 8
}

enum FathomPacketOption {
    static let privateEnterpriseNumber: UInt32 = 32473
    static let version: UInt8 = 1
    static let encodedLength = 24

    @inline(__always)
    static func sourceCode(_ source: CaptureSource) -> UInt8 {
        switch source {
        case .ebpf: 1
        case .ebpfTLS: 2
        case .pcap: 3
        }
    }

    static func source(code: UInt8) -> CaptureSource? {
        switch code {
        case 1: .ebpf
        case 2: .ebpfTLS
        case 3: .pcap
        default: nil
        }
    }
}
