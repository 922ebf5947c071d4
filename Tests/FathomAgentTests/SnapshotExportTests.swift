import FathomModel
import FathomPcapCapture
import FathomRecording
import Foundation
import XCTest

@testable import FathomAgent

/// The export's narrowing and comments over a file of known packets (its HTTP streaming is driven in Tests/Integration).
final class SnapshotExportTests: XCTestCase {
    /// A raw-IP IPv4/TCP packet between two endpoints, with a few payload bytes.
    private func tcpPacket(_ src: (UInt8, UInt16), _ dst: (UInt8, UInt16)) -> [UInt8] {
        var ip: [UInt8] = [0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, src.0, 10, 0, 0, dst.0]
        ip += [UInt8(src.1 >> 8), UInt8(src.1 & 0xff), UInt8(dst.1 >> 8), UInt8(dst.1 & 0xff)]
        ip += [0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]
        return ip + Array("ping".utf8)
    }

    private struct Fixture {
        let path: String
        /// (time ns, source port) of each packet written.
        let packets: [(UInt64, UInt16)]
    }

    /// Three connections to 10.0.0.2:80 (client ports 1000, 1001, 1002), each way, 10 ms apart.
    private func makeFile(_ directory: String) throws -> Fixture {
        let path = directory + "/snapshot.pcapng"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let writer = PcapngWriter(fileDescriptor: fd)
        var written: [(UInt64, UInt16)] = []
        for index in 0..<30 {
            let client = UInt16(1000 + index % 3)
            let outbound = index % 2 == 0
            let bytes = outbound ? tcpPacket((1, client), (2, 80)) : tcpPacket((2, 80), (1, client))
            let time = 1_763_800_000_000_000_000 + UInt64(index) * 10_000_000
            var metadata = PacketMetadata(
                timestampNanoseconds: time, originalLength: UInt32(bytes.count), linkType: LinkType.rawIP,
                source: .ebpf, direction: outbound ? .outbound : .inbound, cgroupID: 4242)
            metadata.processID = outbound ? 7 : 0
            try bytes.withUnsafeBytes { try writer.append(metadata, $0) }
            written.append((time, outbound ? client : 80))
        }
        try writer.flush()
        return Fixture(path: path, packets: written)
    }

    private struct Labels: PacketContextProvider {
        func comment(for m: PacketMetadata, localPort: UInt16?) -> String { "cgroup_id=\(m.cgroupID) pid=\(m.processID)" }
    }

    private func run(_ export: SnapshotExport) throws -> [PacketRecord.Copy] {
        var bytes: [UInt8] = []
        while let chunk = try export.nextChunk() { bytes += chunk }
        let reader = try PacketFileReader(bytes: bytes)
        var out: [PacketRecord.Copy] = []
        while let record = try reader.next() { out.append(.init(record)) }
        return out
    }

    func testTimeBPFAndConnectionNarrowingSelectExactlyTheMatchingPackets() throws {
        let directory = try TemporaryDirectory()
        let fixture = try makeFile(directory.path)
        let all = try run(SnapshotExport(files: [fixture.path], narrowing: .init(), context: Labels()))
        XCTAssertEqual(all.map(\.time), fixture.packets.map(\.0))
        XCTAssertEqual(all.first?.metadata.cgroupID, 4242, "Fathom's own per-packet option survives the export")

        var window = SnapshotExport.Narrowing()
        window.startNanoseconds = fixture.packets[5].0
        window.endNanoseconds = fixture.packets[9].0
        XCTAssertEqual(try run(SnapshotExport(files: [fixture.path], narrowing: window, context: Labels())).map(\.time),
                       fixture.packets[5...9].map(\.0))

        var bpf = SnapshotExport.Narrowing()
        bpf.filter = try PacketFilter(expression: "tcp src port 1001", checkingWith: LinkType.rawIP)
        XCTAssertEqual(try run(SnapshotExport(files: [fixture.path], narrowing: bpf, context: Labels())).map(\.time),
                       fixture.packets.filter { $0.1 == 1001 }.map(\.0))

        var connections = SnapshotExport.Narrowing()
        connections.connections = [ConnectionKey(("10.0.0.2", 80), ("10.0.0.1", 1002))]
        let selected = try run(SnapshotExport(files: [fixture.path], narrowing: connections, context: Labels()))
        XCTAssertEqual(selected.map(\.time), fixture.packets.enumerated().filter { $0.offset % 3 == 2 }.map(\.element.0))
        XCTAssertEqual(selected.count, 10, "both directions of the connection")
    }

    func testDurationsParseAsTheSeedsWriteThem() {
        XCTAssertEqual(Snapshots.parseDuration("1h"), 3_600_000_000_000)
        XCTAssertEqual(Snapshots.parseDuration("1h30m"), 5_400_000_000_000)
        XCTAssertEqual(Snapshots.parseDuration("90s"), 90_000_000_000)
        XCTAssertEqual(Snapshots.parseDuration("500ms"), 500_000_000)
        XCTAssertEqual(Snapshots.parseDuration("2d"), 172_800_000_000_000)
        for bad in ["", "h", "1", "1y", "an hour", "-1h", "0s", "99999999999999h"] {
            XCTAssertNil(Snapshots.parseDuration(bad), bad)
        }
    }
}

extension PacketRecord {
    /// A record copied out of the reader's buffer.
    struct Copy {
        var metadata: PacketMetadata
        var bytes: [UInt8]
        var time: UInt64 { metadata.timestampNanoseconds }
        init(_ record: PacketRecord) {
            metadata = record.metadata
            bytes = Array(record.bytes)
        }
    }
}
