/// Start-up: check the directory can be written, then adopt the segments an earlier run left, repairing the
/// ones a crash tore.
///
/// Only the newest segment can be torn by `kill -9` (it was the one open), so it is read whole: it is truncated
/// to its last complete block, or removed when no packet survives (a segment without packets is useless and has
/// no first-packet time). Older segments get an O(1) check that their file ends with a complete EPB; only those
/// that fail it (after a power loss, say) are read whole and repaired the same way.
extension SegmentStore {
    /// Creates and removes a probe file, so a read-only filesystem is reported now rather than at the first write.
    func checkWritable() throws(RecordingError) {
        let probe = segmentsDirectory + "/.write-probe"
        _ = POSIX.removeFile(probe)
        let (fd, code) = POSIX.createExclusive(probe)
        guard fd >= 0 else { throw RecordingError(kind: .directoryNotWritable, path: segmentsDirectory, errno: code) }
        POSIX.closeFile(fd)
        _ = POSIX.removeFile(probe)
    }

    func recoverSegments() throws(RecordingError) {
        let (names, code) = POSIX.listDirectory(segmentsDirectory)
        guard code == 0 else { throw RecordingError(kind: .cannotListDirectory, path: segmentsDirectory, errno: code) }
        let found = names.compactMap { name in SegmentName.parse(name).map { (name, $0.sequence) } }.sorted { $0.0 < $1.0 }
        for (index, (name, sequence)) in found.enumerated() {
            nextSequence = max(nextSequence, sequence + 1)
            let path = segmentsDirectory + "/" + name
            let isNewest = index == found.count - 1
            if !isNewest, let adopted = Self.adoptIntact(path: path, sequence: sequence) {
                closed.append(adopted)
                closedBytes += adopted.bytes
            } else if let repaired = try repair(path: path, sequence: sequence) {
                closed.append(repaired)
                closedBytes += repaired.bytes
            }
        }
    }

    /// A segment whose last block is a complete EPB, described from its name and that block without reading it all.
    private static func adoptIntact(path: String, sequence: UInt64) -> SegmentInfo? {
        guard let first = SegmentName.parse(String(path.split(separator: "/").last ?? ""))?.firstPacketNanoseconds,
              let size = POSIX.fileSize(path),
              let last = lastPacketTimestamp(path: path, size: size)
        else { return nil }
        return SegmentInfo(path: path, sequence: sequence, firstPacketNanoseconds: first,
                           lastPacketNanoseconds: last, bytes: size, packetCount: nil, isOpen: false)
    }

    /// The timestamp of the file's last block when it is a complete EPB as Fathom writes them (little-endian,
    /// nanosecond resolution), else nil.
    private static func lastPacketTimestamp(path: String, size: UInt64) -> UInt64? {
        let (fd, _) = POSIX.openForReading(path)
        guard fd >= 0 else { return nil }
        defer { POSIX.closeFile(fd) }
        var trailer: UInt32 = 0
        guard size >= 32,
              withUnsafeMutableBytes(of: &trailer, { POSIX.readAt(fd, $0.baseAddress!, 4, size - 4) }) == 4
        else { return nil }
        let length = UInt64(UInt32(littleEndian: trailer))
        guard length >= 32, length % 4 == 0, length <= size else { return nil }
        var header = [UInt8](repeating: 0, count: 20)
        guard header.withUnsafeMutableBytes({ POSIX.readAt(fd, $0.baseAddress!, 20, size - length) }) == 20 else { return nil }
        let field = { (offset: Int) in
            header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        }
        guard field(0) == Pcapng.enhancedPacketBlock, UInt64(field(4)) == length else { return nil }
        return UInt64(field(12)) << 32 | UInt64(field(16))
    }

    /// Reads a segment whole; truncates it after its last complete block, or removes it when it holds no packet.
    private func repair(path: String, sequence: UInt64) throws(RecordingError) -> SegmentInfo? {
        let size = POSIX.fileSize(path) ?? 0
        var packets: UInt64 = 0
        var first: UInt64 = 0
        var last: UInt64 = 0
        var validLength: UInt64 = 0
        if let reader = try? PacketFileReader(path: path) {
            // Read up to the torn tail or the first corrupt block, whichever comes first.
            while let record = try? reader.next() {
                if packets == 0 { first = record.metadata.timestampNanoseconds }
                last = record.metadata.timestampNanoseconds
                packets += 1
            }
            validLength = reader.validLength
        }
        if packets == 0 {
            let code = POSIX.removeFile(path)
            guard code == 0 else { throw RecordingError(kind: .repairFailed, path: path, errno: code) }
            statistics.repairs.add(1, ordering: .relaxed)
            return nil
        }
        if validLength < size {
            let code = POSIX.truncatePath(path, to: validLength)
            guard code == 0 else { throw RecordingError(kind: .repairFailed, path: path, errno: code) }
            statistics.repairs.add(1, ordering: .relaxed)
        }
        return SegmentInfo(path: path, sequence: sequence, firstPacketNanoseconds: first, lastPacketNanoseconds: last,
                           bytes: validLength, packetCount: packets, isOpen: false)
    }
}
