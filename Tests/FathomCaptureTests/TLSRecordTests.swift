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
        XCTAssertTrue(verdict.probes.allSatisfy { $0.fileOffset > 0 })
        XCTAssertTrue(verdict.probes.contains { $0.function == "SSL_set_fd" && $0.program == "tls_ssl_set_fd" })
        // Every read and write is seen once, by an entry probe, and every read's end by a return probe: through the
        // wrappers' common callee (one place for both) or at each wrapper.
        let elf = try ELFFile(path: path)
        let code = TLSDiscovery.MachineCode(elf)
        for (plain, extended) in TLSDiscovery.wrapperPairs {
            let both = verdict.probes.filter { $0.function == "\(plain)/\(extended)" }
            if both.isEmpty {
                XCTAssertEqual(Set(verdict.probes.map(\.function)).intersection([plain, extended]), [plain, extended])
                continue
            }
            XCTAssertFalse(verdict.probes.contains { $0.function == plain || $0.function == extended })
            XCTAssertEqual(Set(both.map(\.fileOffset)).count, 1)
            XCTAssertNotNil(code.emulatedEntry(both[0].fileOffset), "the callee starts with an emulated instruction")
            XCTAssertEqual(both.filter { !$0.returnProbe }.map(\.program), [extended == "SSL_read_ex" ? "tls_ssl_read_ex" : "tls_ssl_write_ex"])
            XCTAssertEqual(both.filter(\.returnProbe).map(\.program), extended == "SSL_read_ex" ? ["tls_ssl_read_ex_return"] : [])
        }
    }

    /// OpenSSL 3's wrappers as Debian builds them (SSL_read / SSL_read_ex and the function both call).
    func testProbesMoveToTheCommonCalleeOfThinWrappers() {
        // 0x00 SSL_read: sub $0x18,%rsp; mov %fs:0x28,%rax; mov %rax,8(%rsp); xor %eax,%eax; test %edx,%edx;
        //      js +0x2f; mov %rsp,%rcx; movslq %edx,%rdx; call 0x80
        // 0x40 SSL_read_ex: sub $8,%rsp; call 0x80
        // 0x80 the callee: push %r13; push %r12; ...
        var image = [UInt8](repeating: 0xCC, count: 0x100)
        let read: [UInt8] = [0x48, 0x83, 0xEC, 0x18, 0x64, 0x48, 0x8B, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00,
                             0x48, 0x89, 0x44, 0x24, 0x08, 0x31, 0xC0, 0x85, 0xD2, 0x78, 0x2F, 0x48, 0x89, 0xE1,
                             0x48, 0x63, 0xD2, 0xE8]
        image.replaceSubrange(0..<read.count, with: read)
        let readCall = read.count - 1
        image.replaceSubrange(readCall + 1..<readCall + 5, with: le32(0x80 - (readCall + 5)))
        image.replaceSubrange(0x40..<0x45, with: [0x48, 0x83, 0xEC, 0x08, 0xE8])
        image.replaceSubrange(0x45..<0x49, with: le32(0x80 - 0x49))
        image.replaceSubrange(0x80..<0x84, with: [0x41, 0x55, 0x41, 0x54])
        let code = TLSDiscovery.MachineCode { offset, count in
            offset < image.count ? Array(image[Int(offset)..<min(image.count, Int(offset) + count)]) : nil
        }
        XCTAssertEqual(code.firstCall(from: 0, argumentsUntouched: false), 0x80)
        XCTAssertNil(code.firstCall(from: 0, argumentsUntouched: true), "SSL_read changes %rcx and %rdx first")
        XCTAssertEqual(code.firstCall(from: 0x40, argumentsUntouched: true), 0x80)

        let symbols = [ELFFile.Symbol(name: "SSL_read", fileOffset: 0, size: 0x40),
                       ELFFile.Symbol(name: "SSL_read_ex", fileOffset: 0x40, size: 0x40)]
        let probes = TLSDiscovery.openSSLProbes(symbols, code: code, memoryBIO: false)
        XCTAssertEqual(probes.map(\.function), ["SSL_read/SSL_read_ex", "SSL_read/SSL_read_ex"])
        XCTAssertEqual(probes.map(\.fileOffset), [0x80, 0x80])
        XCTAssertEqual(probes.map(\.program), ["tls_ssl_read_ex", "tls_ssl_read_ex_return"])

        // A callee that would need single-stepping too: each wrapper keeps its own probes at its entry.
        image[0x80] = 0x48
        let unmoved = TLSDiscovery.openSSLProbes(symbols, code: code, memoryBIO: false)
        XCTAssertEqual(unmoved.map(\.function), ["SSL_read", "SSL_read", "SSL_read_ex", "SSL_read_ex"])
        XCTAssertEqual(unmoved.map(\.fileOffset), [0, 0, 0x40, 0x40])
        image[0x80] = 0x41

        // SSL_read_ex touching an argument register before its call: no redirection.
        image.replaceSubrange(0x40..<0x44, with: [0x48, 0x89, 0xE1, 0x90])  // mov %rsp,%rcx; nop
        XCTAssertNil(code.firstCall(from: 0x40, argumentsUntouched: true))
        XCTAssertEqual(TLSDiscovery.openSSLProbes(symbols, code: code, memoryBIO: false).map(\.fileOffset), [0, 0, 0x40, 0x40])
    }

    func testEntriesSkipAnEndbr64BeforeAnEmulatedPush() {
        let functions: [[UInt8]] = [
            [0x55, 0x48, 0x89, 0xE5],  // push %rbp
            [0xF3, 0x0F, 0x1E, 0xFA, 0x41, 0x57],  // endbr64; push %r15
            [0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x83, 0xEC, 0x08],  // endbr64; sub $8,%rsp
            [0x48, 0x83, 0xEC, 0x08],  // sub $8,%rsp
            [0xF3, 0x0F, 0x1E, 0xFA],  // endbr64 at the end of the code
        ]
        let entries = functions.map { bytes in
            TLSDiscovery.MachineCode { offset, count in Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + count)]) }
                .emulatedEntry(0)
        }
        XCTAssertEqual(entries, [0, 4, nil, nil, nil])
    }

    private func le32(_ value: Int) -> [UInt8] {
        let bits = UInt32(bitPattern: Int32(value))
        return [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
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
