import FathomModel
import Foundation

/// The smallest classic-pcap reading the tests need (the product reader lives in FathomRecording).
struct TestPcapFile {
    struct Packet {
        var metadata: PacketMetadata
        var bytes: [UInt8]
    }

    var linkType: UInt16
    var packets: [Packet]

    init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url)
        let bytes = [UInt8](data)
        guard bytes.count >= 24 else { throw CocoaError(.fileReadCorruptFile) }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        let littleEndian: Bool
        let nanoseconds: Bool
        switch magic {
        case 0xa1b2_c3d4: (littleEndian, nanoseconds) = (true, false)
        case 0xa1b2_3c4d: (littleEndian, nanoseconds) = (true, true)
        case 0xd4c3_b2a1: (littleEndian, nanoseconds) = (false, false)
        case 0x4d3c_b2a1: (littleEndian, nanoseconds) = (false, true)
        default: throw CocoaError(.fileReadCorruptFile)
        }
        func u32(_ offset: Int) -> UInt32 {
            let v = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
            return littleEndian ? v : v.byteSwapped
        }
        linkType = UInt16(truncatingIfNeeded: u32(20))
        packets = []
        var offset = 24
        while offset + 16 <= bytes.count {
            let seconds = UInt64(u32(offset))
            let fraction = UInt64(u32(offset + 4))
            let captured = Int(u32(offset + 8))
            let original = u32(offset + 12)
            guard offset + 16 + captured <= bytes.count else { break }
            let time = seconds * 1_000_000_000 + (nanoseconds ? fraction : fraction * 1000)
            packets.append(
                Packet(
                    metadata: PacketMetadata(
                        timestampNanoseconds: time, originalLength: original, linkType: linkType, source: .pcap),
                    bytes: Array(bytes[(offset + 16)..<(offset + 16 + captured)])))
            offset += 16 + captured
        }
    }

    static func fixture(_ name: String) throws -> TestPcapFile {
        try TestPcapFile(contentsOf: fixtureURL(name))
    }

    static func fixtureURL(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
    }
}
