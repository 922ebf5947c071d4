import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// The store on unfriendly filesystems: read-only and full. The real ones need root (mount); CI runs as root.
final class SegmentStoreFilesystemTests: XCTestCase {
    private func makeStore(_ directory: String, _ configure: (inout SegmentStore.Configuration) -> Void = { _ in })
        throws -> SegmentStore
    {
        var configuration = SegmentStore.Configuration(directory: directory)
        configure(&configuration)
        return try SegmentStore(configuration: configuration)
    }

    /// Mounts a tmpfs on `path` for the duration of `body`.
    private func withTmpfs(_ path: String, options: String, _ body: () throws -> Void) throws {
        let mount = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path])
        XCTAssertEqual(mount.status, 0, mount.error)
        guard mount.status == 0 else { return }
        defer {
            if try! runCommand("/bin/umount", [path]).status != 0 { _ = try? runCommand("/bin/umount", ["-l", path]) }
        }
        try body()
    }

    func testDirectoryThatCannotBeCreatedIsAClearError() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/not-a-directory"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data([1])))
        XCTAssertThrowsError(try makeStore(file + "/data")) { error in
            let error = error as? RecordingError
            XCTAssertEqual(error?.kind, .cannotCreateDirectory)
            XCTAssertEqual(error?.errno, ENOTDIR)
            XCTAssertEqual(error?.description, "cannot create recording directory \(file)/data/segments: Not a directory")
        }
    }

    func testReadOnlyFilesystemIsAClearError() throws {
        try requireRoot()
        let directory = try TemporaryDirectory()
        try withTmpfs(directory.path, options: "ro,size=1m") {
            XCTAssertThrowsError(try makeStore(directory.path)) { error in
                XCTAssertEqual((error as? RecordingError)?.errno, EROFS)
                XCTAssertTrue("\(error)".contains("Read-only file system"), "\(error)")
            }
        }
        // The segments directory already exists, and the filesystem becomes read-only later (remount).
        try withTmpfs(directory.path, options: "size=1m") {
            try FileManager.default.createDirectory(atPath: directory.path + "/segments", withIntermediateDirectories: false)
            XCTAssertEqual(try runCommand("/bin/mount", ["-o", "remount,ro", directory.path]).status, 0)
            XCTAssertThrowsError(try makeStore(directory.path)) { error in
                XCTAssertEqual((error as? RecordingError)?.kind, .directoryNotWritable)
                XCTAssertEqual("\(error)", "recording directory is not writable \(directory.path)/segments: Read-only file system")
            }
        }
    }

    /// Fills a 512 KiB tmpfs: writing stops without a crash or a torn file, drops are counted, and writing resumes
    /// in a fresh segment once space is freed.
    func testDiskFullDropsAndCountsThenResumesWhenSpaceReturns() throws {
        try requireRoot()
        let directory = try TemporaryDirectory()
        try withTmpfs(directory.path, options: "size=512k") {
            let filler = directory.path + "/filler"
            XCTAssertTrue(FileManager.default.createFile(atPath: filler, contents: Data(count: 256 << 10)))
            var store: SegmentStore? = try makeStore(directory.path) {
                $0.segmentBytes = 64 << 10
                $0.writeBufferBytes = 16 << 10
                $0.deleteOldestWhenDiskFull = false
            }
            guard let recording = store else { return }
            let packets = makePackets(6000, sizes: 400...600)
            var sent = 0
            var time = packets[0].metadata.timestampNanoseconds

            func send(_ count: Int) {
                for packet in packets[sent..<min(sent + count, packets.count)] {
                    time += 5_000_000
                    var metadata = packet.metadata
                    metadata.timestampNanoseconds = time
                    packet.bytes.withUnsafeBytes { recording.append(metadata, $0) }
                    sent += 1
                    if sent % 20 == 0 { recording.tick(nowNanoseconds: time) }
                }
            }

            while recording.statistics.snapshot().packetsDropped == 0 && sent < 3000 { send(20) }
            let full = recording.statistics.snapshot()
            XCTAssertGreaterThan(full.packetsDropped, 0)
            XCTAssertGreaterThan(full.bytesDropped, 0)
            XCTAssertGreaterThan(full.writeErrors, 0)
            XCTAssertEqual(full.lastWriteErrno, ENOSPC)
            XCTAssertFalse(full.isWriting)
            send(200)  // still full: appends keep being accepted and counted
            XCTAssertGreaterThan(recording.statistics.snapshot().packetsDropped, full.packetsDropped)
            try assertSegmentsIntact(directory.path, written: recording.statistics.snapshot().packetsWritten)

            try FileManager.default.removeItem(atPath: filler)
            let sequenceBefore = recording.segments().last?.sequence ?? 0
            send(400)  // 2 s of packet time: past the one-second retry, and less than the space freed
            recording.flush()
            let resumed = recording.statistics.snapshot()
            XCTAssertTrue(resumed.isWriting)
            XCTAssertGreaterThan(resumed.packetsWritten, full.packetsWritten)
            XCTAssertGreaterThan(recording.segments().last?.sequence ?? 0, sequenceBefore)
            recording.close()
            let final = recording.statistics.snapshot()
            XCTAssertEqual(final.packetsWritten + final.packetsDropped, UInt64(sent))
            try assertSegmentsIntact(directory.path, written: final.packetsWritten)
            store = nil  // closes every file before the unmount
        }
    }

    /// With nothing else on the disk, the recording itself fills it; after a failed retry the store deletes its
    /// oldest segment to make room and carries on.
    func testDiskFullMakesRoomByDeletingOldestSegments() throws {
        try requireRoot()
        let directory = try TemporaryDirectory()
        try withTmpfs(directory.path, options: "size=512k") {
            let store = try makeStore(directory.path) {
                $0.segmentBytes = 64 << 10
                $0.writeBufferBytes = 16 << 10
                $0.retentionBytes = 1 << 30
            }
            let packets = makePackets(8000, sizes: 400...600)
            var time = packets[0].metadata.timestampNanoseconds
            func send(_ packet: TestPacket) {
                time += 5_000_000
                var metadata = packet.metadata
                metadata.timestampNanoseconds = time
                packet.bytes.withUnsafeBytes { store.append(metadata, $0) }
            }
            for (index, packet) in packets.enumerated() {
                send(packet)
                if index % 20 == 19 { store.tick(nowNanoseconds: time) }
            }
            let filled = store.statistics.snapshot()
            XCTAssertGreaterThan(filled.writeErrors, 0)
            XCTAssertGreaterThan(filled.segmentsDeleted, 0)
            XCTAssertGreaterThan(store.segments().first?.sequence ?? 0, 0, "the oldest segments were deleted")
            // Quiet, then one packet a second past each retry: recording resumes within two retries.
            var attempts = 0
            repeat {
                store.tick(nowNanoseconds: time)
                time += 1_100_000_000
                store.tick(nowNanoseconds: time)
                send(packets[attempts])
                store.flush()
                attempts += 1
            } while !store.statistics.snapshot().isWriting && attempts < 3
            XCTAssertTrue(store.statistics.snapshot().isWriting)
            store.close()
            let statistics = store.statistics.snapshot()
            XCTAssertEqual(statistics.packetsWritten + statistics.packetsDropped, UInt64(packets.count + attempts))
            let newest = try readAllPackets(store.segments().last?.path ?? "").packets
            XCTAssertEqual(newest.last?.metadata.timestampNanoseconds, time, "the last packet was recorded")
            try assertSegmentsIntact(directory.path, written: nil)
        }
    }

    /// Every segment reads to its end without a torn tail; `written`, when given, is how many packets they hold.
    private func assertSegmentsIntact(_ directory: String, written: UInt64?, line: UInt = #line) throws {
        var total: UInt64 = 0
        for path in try segmentFiles(directory) {
            let (packets, reader) = try readAllPackets(path)
            XCTAssertNil(reader.tornTail, path, line: line)
            total += UInt64(packets.count)
        }
        if let written { XCTAssertEqual(total, written, line: line) }
    }
}
