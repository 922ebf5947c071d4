#if canImport(Glibc)
import Glibc
#endif
import FathomModel

/// Copies the packets of a time window out of the recording's segments into a snapshot's `packets` directory:
/// a closed segment lying wholly inside the window is taken in as a hard link (no copy, and retention deleting the
/// segment's own name later leaves the snapshot's), any other one is read and its packets in the window written
/// to a new file. Packet metadata (direction, source, cgroup, socket cookie, process) is kept.
struct SnapshotCutter {
    /// Segments the window touches (by their first and last packet times), in creation order.
    static func overlapping(_ segments: [SegmentInfo], start: UInt64, end: UInt64) -> [SegmentInfo] {
        segments
            .filter { ($0.packetCount ?? 1) > 0 && $0.firstPacketNanoseconds <= end && $0.lastPacketNanoseconds >= start }
            .sorted { $0.sequence < $1.sequence }
    }

    /// Bytes the window is expected to take: whole segments in full, partial ones by the share of their time span
    /// the window covers.
    static func estimate(_ segments: [SegmentInfo], start: UInt64, end: UInt64) -> UInt64 {
        overlapping(segments, start: start, end: end).reduce(0) { total, segment in
            let first = segment.firstPacketNanoseconds, last = max(segment.lastPacketNanoseconds, first)
            if first >= start && last <= end { return total + segment.bytes }
            let span = Double(last - first + 1)
            let covered = Double(min(last, end) - max(first, start) + 1)
            return total + UInt64(Double(segment.bytes) * min(1, covered / span))
        }
    }

    let start: UInt64
    let end: UInt64
    /// `SNAPSHOT/packets`, existing and empty.
    let directory: String
    /// Creation fails with `overBudget` once the files would grow past this.
    let byteLimit: UInt64
    let isCancelled: () -> Bool
    /// Told the counts so far every few thousand packets.
    let progress: (SnapshotManifest) -> Void

    /// Fills in `manifest`'s files and counts; throws when cancelled, over budget or on a write error (the files
    /// written so far are left for the caller to remove).
    func run(_ segments: [SegmentInfo], into manifest: inout SnapshotManifest) throws(SnapshotError) {
        for segment in Self.overlapping(segments, start: start, end: end) {
            if isCancelled() { throw SnapshotError(.io, "cancelled") }
            let name = Self.fileName(manifest.files.count)
            let path = directory + "/" + name
            let whole = !segment.isOpen && segment.firstPacketNanoseconds >= start && segment.lastPacketNanoseconds <= end
            if whole, manifest.bytes + segment.bytes <= byteLimit, link(segment.path, path) == 0 {
                var packets = segment.packetCount ?? 0
                if segment.packetCount == nil { packets = try Self.countPackets(path) }
                manifest.files.append(name)
                manifest.linkedSegments += 1
                add(packets: packets, bytes: segment.bytes, first: segment.firstPacketNanoseconds,
                    last: segment.lastPacketNanoseconds, to: &manifest)
                progress(manifest)
                continue
            }
            if whole && POSIX.lastErrno == ENOENT {
                manifest.missedSegments += 1  // retention deleted it between the listing and the link
                continue
            }
            try cut(segment, to: path, name: name, into: &manifest)
        }
    }

    private func cut(_ segment: SegmentInfo, to path: String, name: String, into manifest: inout SnapshotManifest)
        throws(SnapshotError)
    {
        let reader: PacketFileReader
        do {
            reader = try PacketFileReader(path: segment.path)
        } catch {
            manifest.missedSegments += 1
            return
        }
        let (fd, code) = POSIX.createExclusive(path)
        guard fd >= 0 else { throw SnapshotError(.io, "cannot create \(path): \(POSIX.describe(errno: code))") }
        defer { POSIX.closeFile(fd) }
        let writer = PcapngWriter(fileDescriptor: fd)
        var packets: UInt64 = 0, first: UInt64 = 0, last: UInt64 = 0
        do {
            while let record = try reader.next() {
                let time = record.metadata.timestampNanoseconds
                guard time >= start && time <= end else { continue }
                try writer.append(record.metadata, record.bytes)
                if packets == 0 || time < first { first = time }
                last = max(last, time)
                packets += 1
                if packets & 4095 == 0 {
                    if isCancelled() { throw SnapshotError(.io, "cancelled") }
                    try checkBudget(manifest.bytes + writer.totalBytes)
                    var partial = manifest
                    partial.bytes += writer.totalBytes
                    partial.packets += packets
                    progress(partial)
                }
            }
        } catch let error as SnapshotError {
            throw error
        } catch let error as PcapngWriteError {
            throw SnapshotError(.io, "cannot write \(path): \(error)")
        } catch {
            // The segment is unreadable past this point (torn or corrupt): keep the packets before it.
        }
        do {
            try writer.flush()
        } catch {
            throw SnapshotError(.io, "cannot write \(path): \(error)")
        }
        try checkBudget(manifest.bytes + writer.committedBytes)
        guard packets > 0 else {
            _ = POSIX.removeFile(path)
            return
        }
        manifest.files.append(name)
        manifest.cutSegments += 1
        add(packets: packets, bytes: writer.committedBytes, first: first, last: last, to: &manifest)
        progress(manifest)
    }

    private func checkBudget(_ bytes: UInt64) throws(SnapshotError) {
        if bytes > byteLimit {
            throw SnapshotError(.overBudget, "the snapshot outgrew the snapshot disk budget (\(byteLimit) bytes left)")
        }
    }

    private func add(packets: UInt64, bytes: UInt64, first: UInt64, last: UInt64, to manifest: inout SnapshotManifest) {
        if manifest.packets == 0 || first < manifest.firstPacketNanoseconds { manifest.firstPacketNanoseconds = first }
        manifest.lastPacketNanoseconds = max(manifest.lastPacketNanoseconds, last)
        manifest.packets += packets
        manifest.bytes += bytes
    }

    /// Packets of a segment left by an earlier run, whose count the catalog does not know.
    private static func countPackets(_ path: String) throws(SnapshotError) -> UInt64 {
        var count: UInt64 = 0
        do {
            let reader = try PacketFileReader(path: path)
            while try reader.next() != nil { count += 1 }
        } catch {
            throw SnapshotError(.io, "cannot read \(path): \(error)")
        }
        return count
    }

    /// `000042.pcapng`: fixed width, so names sort in reading order.
    static func fileName(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".pcapng"
    }
}
