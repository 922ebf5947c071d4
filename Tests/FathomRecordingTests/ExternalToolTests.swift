import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// Files written by Fathom open in tshark, and files written by tcpdump and tshark/editcap open in Fathom.
final class ExternalToolTests: XCTestCase {
    private let tshark = "/usr/bin/tshark"
    private let tcpdump = "/usr/bin/tcpdump"
    private let editcap = "/usr/bin/editcap"

    /// tshark prints one line per packet; the direction from epb_flags comes as 0x00000000 (none), 1 (in), 2 (out).
    func testTsharkReadsAWrittenSegmentWithLengthsAndDirections() throws {
        try requireTool(tshark)
        let directory = try TemporaryDirectory()
        let path = directory.path + "/segment.pcapng"
        let packets = makePackets(200, sizes: 20...1400)
        try writePcapng(packets, to: path)

        let result = try runCommand(tshark, ["-n", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len",
                                      "-e", "frame.packet_flags_direction", "-e", "frame.time_epoch"])
        XCTAssertEqual(result.status, 0, result.error)
        let lines = result.output.split(separator: "\n")
        XCTAssertEqual(lines.count, packets.count)
        for (line, packet) in zip(lines, packets) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(fields.count, 4, String(line))
            XCTAssertEqual(fields[0], String(packet.metadata.originalLength))
            XCTAssertEqual(fields[1], String(packet.bytes.count))
            XCTAssertEqual(fields[2], "0x0000000\(packet.metadata.direction.rawValue)", String(line))
            let seconds = packet.metadata.timestampNanoseconds / 1_000_000_000
            let nanoseconds = packet.metadata.timestampNanoseconds % 1_000_000_000
            let nanoText = String(nanoseconds)
            XCTAssertEqual(fields[3], "\(seconds).\(String(repeating: "0", count: 9 - nanoText.count))\(nanoText)")
        }
    }

    /// tshark 4.0 shows the interface name and the direction; it skips the custom option silently (it neither
    /// shows it nor complains), while editcap and `tshark -w` copy it (see the next test).
    func testTsharkVerboseShowsInterfaceNameAndDirection() throws {
        try requireTool(tshark)
        let directory = try TemporaryDirectory()
        let path = directory.path + "/segment.pcapng"
        let metadata = PacketMetadata(
            timestampNanoseconds: 1_763_715_402_000_000_000, originalLength: 4, linkType: LinkType.rawIP,
            source: .ebpfTLS, direction: .outbound, interfaceIndex: 3, cgroupID: 77, socketCookie: 99)
        try writePcapng([TestPacket(metadata: metadata, bytes: [0x45, 0, 0, 4])], to: path)
        let result = try runCommand(tshark, ["-n", "-V", "-r", path])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("Interface name: fathom-ebpf_tls"), result.output)
        XCTAssertTrue(result.output.contains("Direction: Outbound"), result.output)
    }

    /// A segment rewritten by editcap (as a snapshot tool would cut it) keeps every packet and all metadata.
    func testEditcapKeepsFathomMetadata() throws {
        try requireTool(editcap)
        let directory = try TemporaryDirectory()
        let path = directory.path + "/segment.pcapng"
        let copy = directory.path + "/copy.pcapng"
        // editcap refuses to write link types it does not know, so this test sticks to common ones.
        var packets = makePackets(300)
        let linkTypes = [LinkType.ethernet, LinkType.rawIP, LinkType.linuxCookedV2]
        for index in packets.indices { packets[index].metadata.linkType = linkTypes[index % 3] }
        try writePcapng(packets, to: path)
        let result = try runCommand(editcap, ["-F", "pcapng", path, copy])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertEqual(try readAllPackets(copy).packets, packets)
    }

    /// editcap's classic pcap output (µs and ns) reads back with the right bytes, lengths and times.
    func testEditcapClassicPcapReadsBack() throws {
        try requireTool(editcap)
        let directory = try TemporaryDirectory()
        let path = directory.path + "/segment.pcapng"
        var packets = makePackets(100)
        for index in packets.indices {
            packets[index].metadata.linkType = LinkType.ethernet
            packets[index].metadata.source = .pcap
        }
        try writePcapng(packets, to: path)
        for (format, resolution) in [("pcap", UInt64(1000)), ("nsecpcap", UInt64(1))] {
            let classic = directory.path + "/\(format).pcap"
            let result = try runCommand(editcap, ["-F", format, path, classic])
            XCTAssertEqual(result.status, 0, result.error)
            let (read, reader) = try readAllPackets(classic)
            XCTAssertEqual(reader.format, .pcap)
            XCTAssertEqual(read.count, packets.count)
            for (got, want) in zip(read, packets) {
                XCTAssertEqual(got.bytes, want.bytes)
                XCTAssertEqual(got.metadata.originalLength, want.metadata.originalLength)
                XCTAssertEqual(got.metadata.linkType, LinkType.ethernet)
                XCTAssertEqual(got.metadata.timestampNanoseconds,
                               want.metadata.timestampNanoseconds / resolution * resolution)
            }
        }
    }

    /// Real loopback traffic captured by tcpdump (classic pcap), and the same converted by tshark to pcapng,
    /// read by Fathom exactly as tshark reads them.
    func testTcpdumpCaptureAndItsTsharkPcapngConversion() throws {
        try requireRoot()
        try requireTool(tcpdump)
        try requireTool(tshark)
        let directory = try TemporaryDirectory()
        let capture = directory.path + "/lo.pcap"
        let port = 20_000 + Int(getpid() % 20_000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", String(port),
                            "--directory", directory.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }

        let packetCount = 30
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: tcpdump)
        dump.arguments = ["-Z", "root", "-i", "lo", "-U", "-c", String(packetCount), "-w", capture, "tcp port \(port)"]
        dump.standardOutput = FileHandle.nullDevice
        dump.standardError = FileHandle.nullDevice
        try dump.run()
        defer { if dump.isRunning { dump.terminate() }; dump.waitUntilExit() }
        sleep(1)  // let tcpdump attach; the request loop below is what bounds the test
        for _ in 0..<40 where dump.isRunning {
            _ = try runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:\(port)/"])
            usleep(100_000)
        }
        dump.waitUntilExit()
        XCTAssertEqual(dump.terminationStatus, 0)

        let pcapng = directory.path + "/lo.pcapng"
        XCTAssertEqual(try runCommand(tshark, ["-r", capture, "-F", "pcapng", "-w", pcapng]).status, 0)
        let expected = try tsharkView(capture)
        XCTAssertEqual(expected.count, packetCount)
        for path in [capture, pcapng] {
            let (packets, reader) = try readAllPackets(path)
            XCTAssertNil(reader.tornTail)
            XCTAssertEqual(Set(packets.map(\.metadata.linkType)), [LinkType.ethernet])
            XCTAssertEqual(packets.map { "\($0.metadata.originalLength) \($0.bytes.count) "
                                         + epoch($0.metadata.timestampNanoseconds) + " " + hex($0.bytes) }, expected,
                           path)
        }
    }

    /// tshark's view of each packet: wire length, captured length, time, bytes as hex.
    private func tsharkView(_ path: String) throws -> [String] {
        let result = try runCommand(tshark, ["-n", "-r", path, "-T", "json", "-x"])
        XCTAssertEqual(result.status, 0, result.error)
        let packets = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]] ?? []
        return packets.map { packet in
            let layers = (packet["_source"] as? [String: Any])?["layers"] as? [String: Any]
            let frame = layers?["frame"] as? [String: Any]
            let raw = (layers?["frame_raw"] as? [Any])?.first as? String ?? ""
            let field = { (name: String) in frame?[name] as? String ?? "?" }
            return "\(field("frame.len")) \(field("frame.cap_len")) \(field("frame.time_epoch")) \(raw)"
        }
    }

    private func epoch(_ nanoseconds: UInt64) -> String {
        let fraction = String(nanoseconds % 1_000_000_000)
        return "\(nanoseconds / 1_000_000_000).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)"
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
