import FathomModel
import XCTest

@testable import FathomCapture

/// Collects what the synthesizer hands to the recording.
private final class Collector: PacketSink {
    var packets: [(PacketMetadata, [UInt8])] = []
    func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) { packets.append((metadata, Array(packet))) }
    func tick(nowNanoseconds: UInt64) {}
}

final class TLSRecordTests: XCTestCase {
    /// The layout of `struct fathom_tls_header` (128 bytes) followed by the plaintext.
    private func record(
        direction: UInt8, offset: UInt64, plaintext: [UInt8], flags: UInt8 = 0, family: UInt16 = 2,
        local: [UInt8] = [127, 0, 0, 1], remote: [UInt8] = [10, 0, 0, 2], localPort: UInt16 = 40000,
        remotePort: UInt16 = 443, chunkLength: UInt32? = nil, kind: UInt8 = 2
    ) -> [UInt8] {
        var b: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        put(UInt64(5_000)); put(UInt64(42)); put(UInt64(7))  // timestamp, cgroup, cookie
        put(UInt32(1234)); put(UInt32(1235))  // pid, tid
        put(chunkLength ?? UInt32(plaintext.count))
        put(family); b.append(kind); b.append(direction); b.append(flags); b.append(0)
        put(localPort); put(remotePort); put(UInt16(0))
        put(UInt64(0xffff_8880_1234_0000)); put(offset); put(UInt64(plaintext.count))
        let pad = { (a: [UInt8]) in a + [UInt8](repeating: 0, count: 16 - a.count) }
        b += pad(local) + pad(remote)
        b += Array("curl".utf8) + [UInt8](repeating: 0, count: 12)
        put(UInt32(0)); put(UInt32(0))  // call_offset, reserved
        XCTAssertEqual(b.count, TLSSegmentSynthesizer.headerSize)
        return b + plaintext
    }

    private func deliver(_ records: [[UInt8]]) -> (Collector, TLSCounters, [Bool]) {
        let collector = Collector()
        let counters = TLSCounters()
        let synthesizer = TLSSegmentSynthesizer(counters: counters)
        let results = records.map { r in r.withUnsafeBytes { synthesizer.deliver($0, clockOffsetNanoseconds: 0, to: collector) } }
        return (collector, counters, results)
    }

    private func field32(_ p: [UInt8], _ at: Int) -> UInt32 { p[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }

    func testSegmentsCarryAddressesPortsAndSequenceFromTheStreamOffset() throws {
        let (collector, counters, results) = deliver([
            record(direction: 2, offset: 0, plaintext: Array("GET / HTTP/1.1\r\n\r\n".utf8)),
            record(direction: 2, offset: 18, plaintext: Array("GET /2 HTTP/1.1\r\n\r\n".utf8)),
            record(direction: 1, offset: 0, plaintext: Array("HTTP/1.1 200 OK\r\n\r\n".utf8)),
        ])
        XCTAssertEqual(results, [true, true, true])
        XCTAssertEqual(collector.packets.count, 3)
        let (meta, first) = collector.packets[0]
        XCTAssertEqual(meta.source, .ebpfTLS)
        XCTAssertEqual(meta.linkType, LinkType.rawIP)
        XCTAssertEqual(meta.direction, .outbound)
        XCTAssertEqual(meta.cgroupID, 42)
        XCTAssertEqual(meta.processID, 1234)
        XCTAssertEqual(first[0], 0x45)
        XCTAssertEqual(Array(first[12..<16]), [127, 0, 0, 1])  // written: local → remote
        XCTAssertEqual(Array(first[16..<20]), [10, 0, 0, 2])
        XCTAssertEqual(TLSSegmentSynthesizer.checksum(first.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<20]) }), 0)
        XCTAssertEqual(Array(first[20..<24]), [0x9c, 0x40, 0x01, 0xbb])  // 40000 → 443
        XCTAssertEqual(Array(first[40...]), Array("GET / HTTP/1.1\r\n\r\n".utf8))
        let second = collector.packets[1].1
        XCTAssertEqual(field32(second, 24) &- field32(first, 24), 18, "sequence advances by the stream offset")
        let reply = collector.packets[2].1
        XCTAssertEqual(Array(reply[12..<16]), [10, 0, 0, 2])  // read: remote → local
        XCTAssertEqual(Array(reply[20..<24]), [0x01, 0xbb, 0x9c, 0x40])
        XCTAssertEqual(field32(reply, 28), field32(second, 24) &+ UInt32(second.count - 40), "acknowledges what was sent")
        XCTAssertEqual(counters.records.load(ordering: .relaxed), 3)
    }

    func testIPv6() {
        let local: [UInt8] = [0xfd, 0, 2, 0x13] + [UInt8](repeating: 0, count: 11) + [1]
        let (collector, _, _) = deliver([record(direction: 1, offset: 0, plaintext: [1, 2, 3], family: 10, local: local)])
        let packet = collector.packets[0].1
        XCTAssertEqual(packet[0] >> 4, 6)
        XCTAssertEqual(Array(packet[24..<40]), local)  // read: destination is the local end
        XCTAssertEqual(packet.count, 63)
    }

    func testUnjoinedAndFailedCopiesAreCountedNotRecorded() {
        let (collector, counters, results) = deliver([
            record(direction: 2, offset: 0, plaintext: [1], flags: 2),
            record(direction: 2, offset: 0, plaintext: [1], flags: 4),
        ])
        XCTAssertEqual(results, [true, true])
        XCTAssertTrue(collector.packets.isEmpty)
        XCTAssertEqual(counters.unjoinedRecords.load(ordering: .relaxed), 1)
        XCTAssertEqual(counters.copyFailures.load(ordering: .relaxed), 1)
    }

    func testMalformedRecordsAreRefused() {
        var short = record(direction: 2, offset: 0, plaintext: [1, 2, 3])
        short.removeLast()
        let (collector, _, results) = deliver([
            short,  // chunk length past the record
            record(direction: 2, offset: 0, plaintext: [], chunkLength: 20_000),
            record(direction: 2, offset: 0, plaintext: [1], kind: 1),
            Array(repeating: 0, count: 10),
        ])
        XCTAssertEqual(results, [false, false, false, false])
        XCTAssertTrue(collector.packets.isEmpty)
    }

    func testRecordKindIsReadAtTheSameOffsetForBothHeaders() {
        let tls = record(direction: 2, offset: 0, plaintext: [])
        XCTAssertEqual(tls.withUnsafeBytes { RingRecord.kind(of: $0) }, 2)
        XCTAssertEqual([UInt8](repeating: 0, count: 20).withUnsafeBytes { RingRecord.kind(of: $0) }, 0)
    }
}

final class TLSDiscoveryTests: XCTestCase {
    func testFunctionNamesWithAndWithoutPrefixes() {
        XCTAssertEqual(TLSDiscovery.baseFunctionName("SSL_write"), "SSL_write")
        XCTAssertEqual(TLSDiscovery.baseFunctionName("SSL_read_ex"), "SSL_read_ex")
        XCTAssertEqual(TLSDiscovery.baseFunctionName("CNIOBoringSSL_SSL_write"), "SSL_write")
        XCTAssertNil(TLSDiscovery.baseFunctionName("XSSL_write"))
        XCTAssertNil(TLSDiscovery.baseFunctionName("SSL_write_early_data"))
        XCTAssertNil(TLSDiscovery.baseFunctionName("ssl_write"))
    }

    func testLibraryKinds() {
        XCTAssertEqual(TLSDiscovery.libraryKind(path: "/usr/lib/x86_64-linux-gnu/libssl.so.3"), "openssl")
        XCTAssertEqual(TLSDiscovery.libraryKind(path: "/usr/lib/libgnutls.so.30"), "gnutls")
        XCTAssertEqual(TLSDiscovery.libraryKind(path: "/opt/jdk/lib/server/libjvm.so"), "java")
        XCTAssertNil(TLSDiscovery.libraryKind(path: "/usr/lib/libc.so.6"))
    }

    func testFindsTheExportedFunctionsOfTheSystemLibssl() throws {
        let path = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "no libssl 3 on this machine")
        let verdict = TLSDiscovery.inspect(path: path, kind: "openssl")
        XCTAssertNil(verdict.reason)
        XCTAssertEqual(Set(verdict.probes.map(\.function)), ["SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_set_fd"])
        XCTAssertEqual(verdict.probes.filter(\.returnProbe).map(\.function).sorted(), ["SSL_read", "SSL_read_ex"])
        XCTAssertTrue(verdict.probes.allSatisfy { $0.fileOffset > 0 })
    }

    func testAProgramWithoutTLSFunctionsIsPassedOverByItsStringTables() throws {
        // The prefilter may only skip tables that cannot hold a wanted name: the same answer with and without it.
        for path in ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/bin/python3", "/bin/ls"]
        where FileManager.default.fileExists(atPath: path) {
            let elf = try ELFFile(path: path)
            let all = try elf.functions(where: TLSDiscovery.isTLSFunctionName).map(\.name).sorted()
            let filtered = try elf.functions(containing: "SSL_", where: TLSDiscovery.isTLSFunctionName).map(\.name).sorted()
            XCTAssertEqual(filtered, all, path)
        }
        let ls = try ELFFile(path: "/bin/ls")
        var looked = 0
        _ = try ls.functions(containing: "SSL_") { _ in looked += 1; return false }
        XCTAssertEqual(looked, 0, "ls has no SSL_ string: none of its symbols is looked at")
    }

    func testELFRejectsGarbageWithAnError() {
        XCTAssertThrowsError(try ELFFile(data: Data("not an elf".utf8)))
        var header = [UInt8](repeating: 0, count: 64)
        header[0...5] = [0x7f, 0x45, 0x4c, 0x46, 2, 1]
        header[0x28] = 0xff; header[0x29] = 0xff; header[0x2f] = 0x7f  // section table far past the end
        header[0x3A] = 64; header[0x3C] = 3
        XCTAssertThrowsError(try ELFFile(data: Data(header)))
    }
}
