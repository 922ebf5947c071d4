import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

final class SnapshotStoreTests: XCTestCase {
    /// A recording of `packets` in small segments (closed), under `directory/recording`.
    private func record(_ packets: [TestPacket], in directory: String, segmentBytes: UInt64 = 64 << 10) throws -> SegmentStore {
        var configuration = SegmentStore.Configuration(directory: directory + "/recording")
        configuration.segmentBytes = segmentBytes
        let recording = try SegmentStore(configuration: configuration)
        for packet in packets { packet.bytes.withUnsafeBytes { recording.append(packet.metadata, $0) } }
        recording.close()
        return recording
    }

    private func makeSnapshots(_ directory: String, _ recording: SegmentStore, budget: UInt64 = 1 << 30) throws -> SnapshotStore {
        var configuration = SnapshotStore.Configuration(directory: directory + "/snapshots", node: "node-a")
        configuration.budgetBytes = budget
        configuration.settleNanoseconds = 0
        let catalog = recording.catalog
        return try SnapshotStore(configuration: configuration, segments: { catalog.segments() })
    }

    /// Polls until the snapshot leaves in_progress (at most 30 s).
    private func finished(_ store: SnapshotStore, _ name: String) throws -> SnapshotManifest {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let manifest = try XCTUnwrap(store.manifest(name))
            if manifest.status != .inProgress { return manifest }
            usleep(10_000)
        }
        XCTFail("snapshot \(name) still in progress after 30 s")
        return try XCTUnwrap(store.manifest(name))
    }

    private func snapshotPackets(_ store: SnapshotStore, _ name: String) throws -> [TestPacket] {
        try store.packetFiles(name).flatMap { try readAllPackets($0).packets }
    }

    private let now: UInt64 = 1_763_800_000_000_000_000

    func testNamesThatCouldEscapeTheDirectoryOrConfuseToolsAreRefused() {
        for good in ["frontend-analysis", "a", "incident_2026.11.21", String(repeating: "x", count: 64)] {
            XCTAssertNil(SnapshotName.problem(good), good)
        }
        for bad in ["", "../x", "/", "a/b", "..", ".hidden", "-rf", "a b", "naïve", "a\u{0}b", String(repeating: "x", count: 65)] {
            XCTAssertNotNil(SnapshotName.problem(bad), bad)
        }
        XCTAssertTrue(SnapshotName.problem("a/b")!.contains("`/`"))
    }

    func testWindowIsCutExactlyWithWholeSegmentsLinkedAndMetadataKept() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(3000)
        let recording = try record(packets, in: directory.path)
        XCTAssertGreaterThan(recording.segments().count, 10)
        let store = try makeSnapshots(directory.path, recording)
        let start = packets[700].metadata.timestampNanoseconds, end = packets[2300].metadata.timestampNanoseconds
        let begun = try store.create(name: "mid", startNanoseconds: start, endNanoseconds: end, nowNanoseconds: now)
        XCTAssertEqual(begun.status, .inProgress)
        let manifest = try finished(store, "mid")
        XCTAssertEqual(manifest.status, .completed, manifest.reason ?? "")
        let expected = packets.filter { (start...end).contains($0.metadata.timestampNanoseconds) }
        XCTAssertEqual(try snapshotPackets(store, "mid"), expected)
        XCTAssertEqual(manifest.packets, UInt64(expected.count))
        XCTAssertEqual(manifest.nodes, ["node-a"])
        XCTAssertEqual(manifest.firstPacketNanoseconds, start)
        XCTAssertEqual(manifest.lastPacketNanoseconds, end)
        XCTAssertGreaterThan(manifest.linkedSegments, 0)
        XCTAssertEqual(manifest.cutSegments, 2, "only the two segments the window's ends fall in are cut")
        let files = try store.packetFiles("mid")
        XCTAssertEqual(manifest.bytes, try files.reduce(0) { $0 + UInt64(try fileBytes($1).count) })
        // The manifest on disk says the same as the one in memory.
        XCTAssertEqual(SnapshotManifest.read(from: directory.path + "/snapshots/mid/manifest.json"), manifest)
    }

    func testSnapshotOutlivesTheSegmentsRetentionDeletes() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(1000)
        let recording = try record(packets, in: directory.path)
        let store = try makeSnapshots(directory.path, recording)
        _ = try store.create(name: "all", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)
        XCTAssertEqual(try finished(store, "all").status, .completed)
        for segment in try segmentFiles(directory.path + "/recording") { try FileManager.default.removeItem(atPath: segment) }
        XCTAssertEqual(try snapshotPackets(store, "all"), packets)
    }

    func testRefusedRequestsWriteNothing() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(500)
        let recording = try record(packets, in: directory.path)
        let store = try makeSnapshots(directory.path, recording, budget: 200 << 10)
        let first = packets[0].metadata.timestampNanoseconds
        func refusal(_ name: String, _ start: UInt64, _ end: UInt64) -> SnapshotError.Kind? {
            do {
                _ = try store.create(name: name, startNanoseconds: start, endNanoseconds: end, nowNanoseconds: now)
                return nil
            } catch {
                return error.kind
            }
        }
        let before = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/snapshots")
        XCTAssertEqual(refusal("../escape", first, .max - 1), .badName)
        XCTAssertEqual(refusal("", first, .max - 1), .badName)
        XCTAssertEqual(refusal("early", 0, first - 1), .emptyWindow)
        XCTAssertEqual(refusal("backwards", first + 10, first), .badWindow)
        XCTAssertEqual(refusal("too-big", 0, .max - 1), .overBudget, "the recording is larger than the 200 KiB budget")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/snapshots"), before)
        XCTAssertTrue(store.list().isEmpty)

        let small = packets[10].metadata.timestampNanoseconds
        XCTAssertNil(refusal("small", first, small))
        XCTAssertEqual(refusal("small", first, small), .duplicate)
        XCTAssertEqual(try finished(store, "small").packets, 11)
    }

    func testRestartKeepsCompletedSnapshotsAndFailsInterruptedOnes() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(400)
        let recording = try record(packets, in: directory.path)
        do {
            let store = try makeSnapshots(directory.path, recording)
            _ = try store.create(name: "done", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)
            XCTAssertEqual(try finished(store, "done").status, .completed)
        }
        // What a crash leaves: a snapshot in progress with part of its packets, and a directory with no manifest.
        let root = directory.path + "/snapshots"
        var interrupted = SnapshotManifest(name: "cut-short", startNanoseconds: 0, endNanoseconds: 1, createdMs: 1, nodes: ["n"])
        interrupted.bytes = 4096
        interrupted.files = ["000000.pcapng"]
        try FileManager.default.createDirectory(atPath: root + "/cut-short/packets", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/cut-short/packets/000000.pcapng", contents: Data(count: 4096)))
        try interrupted.write(to: root + "/cut-short/manifest.json")
        try FileManager.default.createDirectory(atPath: root + "/orphan", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/garbled", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/garbled/manifest.json", contents: Data("{".utf8)))

        let reopened = try makeSnapshots(directory.path, recording)
        XCTAssertEqual(reopened.manifest("done")?.status, .completed)
        XCTAssertEqual(try snapshotPackets(reopened, "done"), packets)
        let failed = try XCTUnwrap(reopened.manifest("cut-short"))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.reason, SnapshotStore.interruptedReason)
        XCTAssertEqual(failed.bytes, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/cut-short/packets"))
        XCTAssertEqual(SnapshotManifest.read(from: root + "/cut-short/manifest.json")?.status, .failed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/orphan"))
        XCTAssertEqual(reopened.manifest("garbled")?.status, .failed, "kept for the user to see, never read")
        XCTAssertThrowsError(try reopened.packetFiles("garbled"))
        try reopened.delete("garbled")
        XCTAssertEqual(reopened.list().map(\.name), ["cut-short", "done"])
        XCTAssertThrowsError(try reopened.packetFiles("cut-short"))
    }

    func testBudgetCountsEverySnapshotAndDeletionFreesIt() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(600)
        let recording = try record(packets, in: directory.path)
        let total = recording.segments().reduce(0) { $0 + $1.bytes }
        let store = try makeSnapshots(directory.path, recording, budget: total + total / 2)
        _ = try store.create(name: "one", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)
        XCTAssertThrowsError(try store.create(name: "two", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)) {
            XCTAssertEqual(($0 as? SnapshotError)?.kind, .overBudget)
        }
        XCTAssertEqual(try finished(store, "one").status, .completed)
        XCTAssertEqual(store.usedBytes, total)
        try store.delete("one")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path + "/snapshots/one"))
        XCTAssertEqual(store.usedBytes, 0)
        _ = try store.create(name: "two", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)
        XCTAssertEqual(try finished(store, "two").packets, UInt64(packets.count))
        XCTAssertThrowsError(try store.delete("one")) { XCTAssertEqual(($0 as? SnapshotError)?.kind, .notFound) }
    }

    func testConcurrentSnapshotsAndDeletionDuringCreation() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(4000)
        let recording = try record(packets, in: directory.path, segmentBytes: 1 << 20)
        let store = try makeSnapshots(directory.path, recording)
        let times = packets.map(\.metadata.timestampNanoseconds)
        let windows = [(times[0], times[999]), (times[1000], times[2999]), (times[500], times[3999])]
        for (index, window) in windows.enumerated() {
            _ = try store.create(name: "w\(index)", startNanoseconds: window.0, endNanoseconds: window.1, nowNanoseconds: now)
        }
        _ = try store.create(name: "doomed", startNanoseconds: 0, endNanoseconds: .max - 1, nowNanoseconds: now)
        try store.delete("doomed")  // whether or not its copy had finished
        XCTAssertNil(store.manifest("doomed"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path + "/snapshots/doomed"))
        for (index, window) in windows.enumerated() {
            XCTAssertEqual(try finished(store, "w\(index)").status, .completed)
            XCTAssertEqual(try snapshotPackets(store, "w\(index)"), packets.filter { (window.0...window.1).contains($0.metadata.timestampNanoseconds) })
        }
    }

    func testEstimateCountsWholeSegmentsFullyAndPartialOnesByTimeShare() {
        func segment(_ first: UInt64, _ last: UInt64, _ bytes: UInt64, _ sequence: UInt64) -> SegmentInfo {
            SegmentInfo(path: "", sequence: sequence, firstPacketNanoseconds: first, lastPacketNanoseconds: last, bytes: bytes,
                        packetCount: 10, isOpen: false)
        }
        let segments = [segment(0, 99, 1000, 0), segment(100, 199, 1000, 1), segment(200, 299, 1000, 2)]
        XCTAssertEqual(SnapshotCutter.estimate(segments, start: 100, end: 199), 1000)
        XCTAssertEqual(SnapshotCutter.estimate(segments, start: 150, end: 249), 500 + 500)
        XCTAssertEqual(SnapshotCutter.estimate(segments, start: 300, end: 400), 0)
        XCTAssertEqual(SnapshotCutter.overlapping(segments, start: 99, end: 100).map(\.sequence), [0, 1])
    }

    func testPacketCommentsAreWrittenWithoutDisturbingTheReader() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(50)
        var output: [UInt8] = []
        let writer = PcapngWriter(bufferCapacity: 4096) { bytes in
            output.append(contentsOf: bytes)
            return 0
        }
        for (index, packet) in packets.enumerated() {
            let comment = Array("pod=checkout-\(index) ünïcode".utf8)
            try packet.bytes.withUnsafeBytes { bytes in
                try comment.withUnsafeBytes { try writer.append(packet.metadata, bytes, comment: $0) }
            }
        }
        try writer.flush()
        let path = directory.path + "/commented.pcapng"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(output)))
        XCTAssertEqual(try readAllPackets(path).packets, packets)
        XCTAssertNotNil(output.firstRange(of: Array("pod=checkout-49 ünïcode".utf8)))
    }
}
