import FathomModel
import XCTest

@testable import FathomRecording

final class PacketFileReaderTests: XCTestCase {
    private func readAll(_ bytes: [UInt8]) throws -> [TestPacket] {
        let reader = try PacketFileReader(bytes: bytes)
        var packets: [TestPacket] = []
        try reader.forEach { packets.append(TestPacket(metadata: $0, bytes: Array($1))) }
        return packets
    }

    /// Two sections in opposite byte orders with every packet block kind, unusual timestamp resolutions, an
    /// unknown block and an unknown link type.
    private func mixedPcapng(firstSectionBigEndian bigEndian: Bool) -> [UInt8] {
        var file = FileBuilder(bigEndian: bigEndian)
        file.sectionHeader()
        file.interface(linkType: 1, options: file.option(9, [3]) + file.option(14, file.u64(10)))  // ms, +10 s
        file.interface(linkType: 4242, snapLength: 64,
                       options: file.option(9, [0x80 | 20]) + file.option(2, Array("fathom-ebpf_tls".utf8)))
        file.block(0x0000_0BAD, [1, 2, 3, 4, 5, 6, 7, 8])
        file.enhancedPacket(interface: 0, timestamp: 1500, data: [1, 2, 3, 4, 5], originalLength: 60,
                            options: file.option(2, file.u32(2)))
        file.enhancedPacket(interface: 1, timestamp: 3 << 20 | 1 << 19, data: [9, 8, 7],
                            options: file.option(1, Array("a comment".utf8))
                                + file.fathomOption(source: 1, interfaceIndex: 7, cgroupID: 0x1122_3344_5566_7788,
                                                    socketCookie: 42))
        // Obsolete packet block: u16 interface, u16 drops, then as an EPB; pack_flags inbound.
        file.block(2, file.u16(0) + file.u16(0) + file.u32(0) + file.u32(2000) + file.u32(3) + file.u32(3)
            + FileBuilder.padded([0xAA, 0xBB, 0xCC]) + file.option(2, file.u32(1)) + file.endOfOptions)
        // Simple packet block: original length 100, 64 bytes present.
        file.block(3, file.u32(100) + [UInt8](repeating: 0x5A, count: 64))
        // A custom option with another enterprise number and one with an unknown version are ignored.
        file.enhancedPacket(interface: 0, timestamp: 1, data: [],
                            options: file.fathomOption(source: 1, interfaceIndex: 1, cgroupID: 1, socketCookie: 1,
                                                       enterprise: 99)
                                + file.fathomOption(source: 1, interfaceIndex: 1, cgroupID: 1, socketCookie: 1,
                                                    version: 9))
        var second = FileBuilder(bigEndian: !bigEndian)
        second.sectionHeader()
        second.interface(linkType: 101)  // default resolution: microseconds
        second.enhancedPacket(interface: 0, timestamp: 5_000_001, data: [0x45])
        return file.bytes + second.bytes
    }

    func testPcapngWithSectionsInBothByteOrdersAndEveryPacketBlockKind() throws {
        for bigEndian in [false, true] {
            let packets = try readAll(mixedPcapng(firstSectionBigEndian: bigEndian))
            let expected = [
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 11_500_000_000, originalLength: 60,
                                                    linkType: 1, source: .pcap, direction: .outbound),
                           bytes: [1, 2, 3, 4, 5]),
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 3_500_000_000, originalLength: 3,
                                                    linkType: 4242, source: .ebpf, interfaceIndex: 7,
                                                    cgroupID: 0x1122_3344_5566_7788, socketCookie: 42),
                           bytes: [9, 8, 7]),
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 12_000_000_000, originalLength: 3,
                                                    linkType: 1, source: .pcap, direction: .inbound),
                           bytes: [0xAA, 0xBB, 0xCC]),
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 0, originalLength: 100, linkType: 1,
                                                    source: .pcap),
                           bytes: [UInt8](repeating: 0x5A, count: 64)),
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 10_001_000_000, originalLength: 0,
                                                    linkType: 1, source: .pcap),
                           bytes: []),
                TestPacket(metadata: PacketMetadata(timestampNanoseconds: 5_000_001_000, originalLength: 1,
                                                    linkType: 101, source: .pcap),
                           bytes: [0x45]),
            ]
            XCTAssertEqual(packets, expected, "first section big-endian: \(bigEndian)")
        }
    }

    func testInterfaceNamedLikeFathomsGivesItsSourceWhenTheOptionIsMissing() throws {
        var file = FileBuilder(bigEndian: false)
        file.sectionHeader()
        file.interface(linkType: 1, options: file.option(2, Array("fathom-ebpf_tls".utf8)))
        file.enhancedPacket(interface: 0, timestamp: 1, data: [1])
        XCTAssertEqual(try readAll(file.bytes).first?.metadata.source, .ebpfTLS)
    }

    func testClassicPcapInMicrosecondsAndNanosecondsAndBothByteOrders() throws {
        for bigEndian in [false, true] {
            for nanoseconds in [false, true] {
                var file = FileBuilder(bigEndian: bigEndian)
                file.pcapHeader(nanoseconds: nanoseconds, linkType: 0x0400_0071)  // FCS bits + LINKTYPE 113
                file.pcapRecord(seconds: 1_700_000_000, fraction: 123_456, data: [1, 2, 3], originalLength: 1500)
                file.pcapRecord(seconds: 1_700_000_001, fraction: 0, data: [])
                let reader = try PacketFileReader(bytes: file.bytes)
                XCTAssertEqual(reader.format, .pcap)
                var packets: [TestPacket] = []
                try reader.forEach { packets.append(TestPacket(metadata: $0, bytes: Array($1))) }
                let fraction: UInt64 = nanoseconds ? 123_456 : 123_456_000
                XCTAssertEqual(packets, [
                    TestPacket(metadata: PacketMetadata(timestampNanoseconds: 1_700_000_000_000_000_000 + fraction,
                                                        originalLength: 1500, linkType: 113, source: .pcap),
                               bytes: [1, 2, 3]),
                    TestPacket(metadata: PacketMetadata(timestampNanoseconds: 1_700_000_001_000_000_000,
                                                        originalLength: 0, linkType: 113, source: .pcap),
                               bytes: []),
                ], "big-endian \(bigEndian), ns \(nanoseconds)")
                XCTAssertNil(reader.tornTail)
                XCTAssertEqual(reader.validLength, UInt64(file.bytes.count))
            }
        }
    }

    // MARK: - Errors

    private func error(reading bytes: [UInt8]) -> PacketFileError? {
        do {
            let reader = try PacketFileReader(bytes: bytes)
            while try reader.next() != nil {}
            return nil
        } catch {
            return error
        }
    }

    func testNotAPacketFile() {
        XCTAssertEqual(error(reading: Array("GET / HTTP/1.1\r\n".utf8)),
                       PacketFileError(.badMagic(0x4745_5420), at: 0))
        XCTAssertEqual(error(reading: [0x0A, 0x0D]), PacketFileError(.truncatedFileHeader, at: 0))
        XCTAssertEqual(error(reading: []), PacketFileError(.truncatedFileHeader, at: 0))
        let message = PacketFileError(.badMagic(0x4745_5420), at: 0).description
        XCTAssertTrue(message.contains("byte offset 0"), message)
    }

    func testMissingFileIsAnIOError() {
        XCTAssertThrowsError(try PacketFileReader(path: "/nonexistent/fathom.pcapng")) { error in
            XCTAssertEqual(error as? PacketFileError, PacketFileError(.io(errno: ENOENT), at: 0))
        }
    }

    /// A valid section and interface followed by `tail`; errors in `tail` are at offset 28 + 20 = 48.
    private func validPrefix(then tail: (inout FileBuilder) -> Void) -> [UInt8] {
        var file = FileBuilder(bigEndian: false)
        file.sectionHeader()
        file.interface(linkType: 1)
        XCTAssertEqual(file.bytes.count, 48)
        tail(&file)
        return file.bytes
    }

    func testCorruptBlocksAreReportedWithTheirOffset() {
        XCTAssertEqual(error(reading: validPrefix { $0.bytes += $0.u32(6) + $0.u32(7) + [0, 0, 0, 0] }),
                       PacketFileError(.absurdBlockLength(7), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.bytes += $0.u32(6) + $0.u32(0x7FFF_FFF0) + [0, 0, 0, 0] }),
                       PacketFileError(.absurdBlockLength(0x7FFF_FFF0), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.bytes += $0.u32(6) + $0.u32(16) + $0.u32(0) + $0.u32(20) }),
                       PacketFileError(.blockLengthMismatch(leading: 16, trailing: 20), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.enhancedPacket(interface: 3, timestamp: 0, data: [1]) }),
                       PacketFileError(.unknownInterface(3), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.block(6, $0.u32(0) + $0.u32(0) + $0.u32(0) + $0.u32(400) + $0.u32(400) + [1, 2, 3, 4]) }),
                       PacketFileError(.malformedBlock("captured length 400 exceeds block length 36"), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.enhancedPacket(interface: 0, timestamp: 0, data: [1],
                                                                     options: $0.u16(2) + $0.u16(200)) }),
                       PacketFileError(.malformedBlock("option 2 runs past the end of its block"), at: 48))
        XCTAssertEqual(error(reading: validPrefix { $0.sectionHeader(major: 2) }),
                       PacketFileError(.unsupportedVersion(major: 2, minor: 0), at: 48))
        var badResolution = FileBuilder(bigEndian: false)
        badResolution.sectionHeader()
        badResolution.interface(linkType: 1, options: badResolution.option(9, [40]))
        XCTAssertEqual(error(reading: badResolution.bytes), PacketFileError(.malformedBlock("if_tsresol 40 out of range"), at: 28))
    }

    func testCorruptPcapRecordsAreReportedWithTheirOffset() {
        var file = FileBuilder(bigEndian: false)
        file.pcapHeader(nanoseconds: false, linkType: 1)
        file.pcapRecord(seconds: 1, fraction: 0, data: [1, 2])
        file.bytes += file.u32(0) + file.u32(0) + file.u32(0xFFFF_FFF0) + file.u32(0)
        XCTAssertEqual(error(reading: file.bytes), PacketFileError(.absurdBlockLength(0xFFFF_FFF0), at: 42))
        var version = FileBuilder(bigEndian: true)
        version.pcapHeader(nanoseconds: true, linkType: 1, major: 3)
        XCTAssertEqual(error(reading: version.bytes), PacketFileError(.unsupportedVersion(major: 3, minor: 4), at: 4))
    }

    func testErrorsAreSticky() throws {
        let reader = try PacketFileReader(bytes: validPrefix { $0.bytes += $0.u32(6) + $0.u32(7) + [0, 0, 0, 0] })
        XCTAssertThrowsError(try reader.next())
        XCTAssertThrowsError(try reader.next())
        XCTAssertEqual(reader.validLength, 48)
    }

    // MARK: - Torn files

    func testPcapngTornAtEveryOffsetOfTheLastBlocksYieldsTheCompletePackets() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/torn.pcapng"
        let packets = makePackets(40, sizes: 0...120)
        try writePcapng(packets, to: path)
        let whole = try fileBytes(path)
        // Block boundaries from the writer's own layout: 36 + 12 ("fathom") SHB, then IDBs and EPBs.
        let complete = try PacketFileReader(bytes: whole)
        var ends: [UInt64] = []
        while try complete.next() != nil { ends.append(complete.validLength) }
        XCTAssertEqual(ends.count, packets.count)
        let firstCut = Int(ends[ends.count - 4])
        for cut in firstCut...whole.count {
            let reader = try PacketFileReader(bytes: Array(whole[..<cut]))
            var count = 0
            while let record = try reader.next() {
                XCTAssertEqual(Array(record.bytes), packets[count].bytes)
                count += 1
            }
            let kept = ends.lastIndex { $0 <= UInt64(cut) }.map { $0 + 1 } ?? 0
            XCTAssertEqual(count, kept, "cut at \(cut)")
            let boundary = ends[kept - 1]
            if UInt64(cut) == boundary {
                XCTAssertNil(reader.tornTail, "cut at \(cut)")
            } else {
                XCTAssertEqual(reader.tornTail, TornTail(offset: boundary, byteCount: UInt64(cut) - boundary),
                               "cut at \(cut)")
            }
            XCTAssertEqual(reader.validLength, boundary)
        }
    }

    func testTornSectionHeaderAndTornPcapRecord() throws {
        var pcapng = FileBuilder(bigEndian: false)
        pcapng.sectionHeader()
        let shb = try PacketFileReader(bytes: Array(pcapng.bytes[..<10]))
        XCTAssertNil(try shb.next())
        XCTAssertEqual(shb.tornTail, TornTail(offset: 0, byteCount: 10))

        var pcap = FileBuilder(bigEndian: true)
        pcap.pcapHeader(nanoseconds: false, linkType: 1)
        pcap.pcapRecord(seconds: 1, fraction: 2, data: [1, 2, 3, 4])
        pcap.pcapRecord(seconds: 2, fraction: 2, data: [5, 6, 7, 8])
        let reader = try PacketFileReader(bytes: Array(pcap.bytes.dropLast(2)))
        XCTAssertNotNil(try reader.next())
        XCTAssertNil(try reader.next())
        XCTAssertEqual(reader.tornTail, TornTail(offset: 44, byteCount: 18))
        XCTAssertEqual(reader.validLength, 44)
    }
}
