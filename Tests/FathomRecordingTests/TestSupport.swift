import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// A directory under /tmp removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "fathom-recording") throws {
        path = NSTemporaryDirectory() + "/\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct CommandResult {
    var status: Int32
    var output: String
    var error: String
}

/// Runs a program to completion and returns its status and output (bounded by `timeout` seconds).
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // Read while it runs so a large output cannot fill the pipe and block it.
    let outputData = LockedData()
    let errorData = LockedData()
    let readers = DispatchGroup()
    for (pipe, sink) in [(output, outputData), (error, errorData)] {
        readers.enter()
        DispatchQueue.global().async {
            sink.set(pipe.fileHandleForReading.readDataToEndOfFile())
            readers.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    readers.wait()
    return CommandResult(
        status: process.terminationStatus, output: String(decoding: outputData.get(), as: UTF8.self),
        error: String(decoding: errorData.get(), as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}

/// Skips a test that needs root, except under CI=true where it must run.
func requireRoot() throws {
    guard getuid() != 0 else { return }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        XCTFail("this test needs root and CI=true forbids skipping it")
        throw XCTSkip("needs root")
    }
    throw XCTSkip("needs root")
}

/// Skips a test that needs a tool, except under CI=true where the tool must be installed.
func requireTool(_ path: String) throws {
    guard !FileManager.default.isExecutableFile(atPath: path) else { return }
    if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("\(path) is missing") }
    throw XCTSkip("\(path) is not installed")
}

/// Deterministic pseudo-random numbers (SplitMix64), so failures reproduce.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// A packet with its metadata, as tests generate and read them back.
struct TestPacket: Equatable {
    var metadata: PacketMetadata
    var bytes: [UInt8]
}

/// `count` packets with varied sizes and every kind of metadata, timestamps increasing from `start`.
func makePackets(_ count: Int, seed: UInt64 = 1, start: UInt64 = 1_763_715_402_000_000_000,
                 sizes: ClosedRange<Int> = 0...1600) -> [TestPacket] {
    var random = SplitMix64(state: seed)
    let sources = CaptureSource.allCases
    let linkTypes = [LinkType.ethernet, LinkType.rawIP, LinkType.linuxCookedV2, 4242]
    let directions: [PacketDirection] = [.unknown, .inbound, .outbound]
    var time = start
    return (0..<count).map { _ in
        time += UInt64(random.below(1_000_000)) + 1
        let length = sizes.lowerBound + random.below(sizes.count)
        var bytes = [UInt8](repeating: 0, count: length)
        for start in stride(from: 0, to: length, by: 8) {
            withUnsafeBytes(of: random.next()) { word in
                for offset in 0..<min(8, length - start) { bytes[start + offset] = word[offset] }
            }
        }
        let metadata = PacketMetadata(
            timestampNanoseconds: time, originalLength: UInt32(length + random.below(3) * 100),
            linkType: linkTypes[random.below(linkTypes.count)], source: sources[random.below(sources.count)],
            direction: directions[random.below(directions.count)], interfaceIndex: UInt32(random.below(64)),
            cgroupID: random.next(), socketCookie: random.next())
        return TestPacket(metadata: metadata, bytes: bytes)
    }
}

/// Every packet of a file, copied out of the reader.
func readAllPackets(_ path: String) throws -> (packets: [TestPacket], reader: PacketFileReader) {
    let reader = try PacketFileReader(path: path)
    var packets: [TestPacket] = []
    while let record = try reader.next() {
        packets.append(TestPacket(metadata: record.metadata, bytes: Array(record.bytes)))
    }
    return (packets, reader)
}

/// Writes packets to a new pcapng file with `PcapngWriter`.
func writePcapng(_ packets: [TestPacket], to path: String, bufferCapacity: Int = 64 << 10) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    XCTAssertGreaterThanOrEqual(fd, 0)
    defer { close(fd) }
    let writer = PcapngWriter(fileDescriptor: fd, bufferCapacity: bufferCapacity)
    for packet in packets {
        try packet.bytes.withUnsafeBytes { try writer.append(packet.metadata, $0) }
    }
    try writer.flush()
}

func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// Every packet of every segment file, oldest segment first, checking no file is torn.
func readSegments(_ directory: String) throws -> [TestPacket] {
    try segmentFiles(directory).flatMap { path in
        let (packets, reader) = try readAllPackets(path)
        XCTAssertNil(reader.tornTail, path)
        return packets
    }
}

func segmentFiles(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory + "/segments")
        .filter { $0.hasSuffix(".pcapng") }.sorted().map { directory + "/segments/" + $0 }
}
