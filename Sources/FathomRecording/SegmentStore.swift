import FathomModel

/// The continuous recording: packets go into pcapng segment files under `DIRECTORY/segments/`, rotated by size
/// and age and deleted oldest-first beyond a retention budget.
///
/// Threading: `append`, `tick`, `flush` and `close` belong to one thread (the capture thread). `statistics` and
/// `catalog` (and `segments()`) may be read from any thread.
///
/// Crash safety: the file only ever grows by appending, so `kill -9` can tear at most the last block of the open
/// segment; the next start truncates it back to its last complete block.
/// Write errors (disk full, quota, I/O): the open segment is cut back to its last complete block and closed,
/// packets are counted as dropped instead of written, and about once a second `tick` tries again in a fresh
/// segment (first applying retention and, while the disk is still full, deleting the oldest segment for room).
/// Set the retention budget below the disk's capacity: deleting for room is the last resort, and costs the
/// packets that arrive during the retry interval.
public final class SegmentStore: PacketSink {
    /// Where and how much to record.
    public struct Configuration: Sendable {
        /// The data directory; segments go into its `segments` subdirectory.
        public var directory: String
        /// A segment is closed before it would grow past this many bytes (a single larger packet still fits).
        public var segmentBytes: UInt64 = 64 << 20
        /// A segment is closed once its first packet is this old (by packet time, or by `tick`'s clock); 0: never.
        public var segmentSeconds: UInt64 = 60
        /// Oldest segments are deleted while all segments together exceed this; the total may exceed it by at
        /// most the open segment.
        public var retentionBytes: UInt64 = 2 << 30
        /// Size of the write buffer; it is written out when full and on `tick` every `flushIntervalNanoseconds`.
        public var writeBufferBytes: Int = PcapngWriter.defaultBufferCapacity
        /// How often `tick` writes the buffer out even when it is not full.
        public var flushIntervalNanoseconds: UInt64 = 100_000_000
        /// How long to wait after a write error before trying again.
        public var retryIntervalNanoseconds: UInt64 = 1_000_000_000
        /// While the disk stays full (ENOSPC/EDQUOT), delete the oldest segment before each retry to make room.
        public var deleteOldestWhenDiskFull: Bool = true
        /// Write whole pages with O_DIRECT where the file system allows it (see `PcapngWriter`).
        public var directWrites: Bool = true

        /// The defaults (64 MiB / 60 s segments, 2 GiB retention, 2 MiB buffer) under `directory`.
        public init(directory: String) { self.directory = directory }
    }

    /// The segment being written.
    final class OpenSegment {
        let path: String
        let sequence: UInt64
        let firstPacketNanoseconds: UInt64
        let fileDescriptor: Int32
        /// The same file opened with O_DIRECT, or -1.
        let directFileDescriptor: Int32
        let writer: PcapngWriter

        init(path: String, sequence: UInt64, firstPacketNanoseconds: UInt64, fileDescriptor: Int32,
             directFileDescriptor: Int32, writer: PcapngWriter) {
            self.path = path
            self.sequence = sequence
            self.firstPacketNanoseconds = firstPacketNanoseconds
            self.fileDescriptor = fileDescriptor
            self.directFileDescriptor = directFileDescriptor
            self.writer = writer
        }

        var info: SegmentInfo {
            SegmentInfo(
                path: path, sequence: sequence, firstPacketNanoseconds: firstPacketNanoseconds,
                lastPacketNanoseconds: max(writer.committedLastTimestamp, firstPacketNanoseconds),
                bytes: writer.committedBytes, packetCount: writer.committedPackets, isOpen: true)
        }
    }

    /// The configuration the store was opened with.
    public let configuration: Configuration
    /// `DIRECTORY/segments`.
    public let segmentsDirectory: String
    /// Counters, readable from any thread.
    public let statistics = RecordingStatistics()
    /// The segment list, readable from any thread.
    public let catalog = SegmentCatalog()
    /// Sees every buffer written, on the capture thread; set it before capture starts.
    public var tap: RecordingTap?

    let segmentNanoseconds: UInt64
    var current: OpenSegment? {
        didSet {
            currentWriter = current.map { Unmanaged.passUnretained($0.writer) }
            currentFirstPacketNanoseconds = current?.firstPacketNanoseconds ?? 0
        }
    }
    /// The open segment's writer and first packet time, for the per-packet path: reading them through `current`
    /// cost a retain and a release per packet (a fifth of the capture thread's time). `current` keeps the writer alive.
    private var currentWriter: Unmanaged<PcapngWriter>?
    /// The write buffers, handed from each segment's writer to the next.
    private let writeBuffers: IOBufferPool
    private var currentFirstPacketNanoseconds: UInt64 = 0
    /// Closed segments, oldest first.
    var closed: [SegmentInfo] = []
    var closedBytes: UInt64 = 0
    var nextSequence: UInt64 = 0
    /// Packets and bytes written by segments closed during this run (the open one's are in its writer).
    var closedPacketsWritten: UInt64 = 0
    var closedBytesWritten: UInt64 = 0
    var packetsDropped: UInt64 = 0
    var bytesDropped: UInt64 = 0
    var writing = true
    var lastErrno: Int32 = 0
    /// Retries since the last successful write that failed again.
    var failedRetries = 0
    var retryAtNanoseconds: UInt64?
    var lastFlushNanoseconds: UInt64 = 0

    /// Creates the directory, checks it is writable, repairs segments torn by a crash and adopts the others.
    public init(configuration: Configuration) throws(RecordingError) {
        self.configuration = configuration
        writeBuffers = PcapngWriter.bufferPool(bufferCapacity: configuration.writeBufferBytes)
        segmentsDirectory = configuration.directory + "/segments"
        segmentNanoseconds = configuration.segmentSeconds &* 1_000_000_000
        let code = POSIX.makeDirectories(segmentsDirectory)
        guard code == 0 else { throw RecordingError(kind: .cannotCreateDirectory, path: segmentsDirectory, errno: code) }
        try checkWritable()
        try recoverSegments()
        enforceRetention()
        publish()
    }

    deinit { close() }

    /// Closed segments oldest first, then the open one; a copy safe to use from any thread.
    public func segments() -> [SegmentInfo] { catalog.segments() }

    /// Records one packet. Never blocks on anything but the occasional buffer write; never fails: packets that
    /// cannot be written are counted in `statistics`.
    public func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {
        // The common case touches only the open writer, without reference counting.
        if writing, let writer = currentWriter {
            let result = writer._withUnsafeGuaranteedRef { writer -> Result<Bool, PcapngWriteError> in
                if mustRotate(writer, metadata, capturedLength: packet.count) { return .success(false) }
                do throws(PcapngWriteError) {
                    try writer.append(metadata, packet)
                    return .success(true)
                } catch {
                    return .failure(error)
                }
            }
            switch result {
            case .success(true): return
            case .success(false): break
            case .failure(let error):
                handleWriteFailure(error)  // may close the segment: not inside the closure above
                return
            }
        }
        appendRotating(metadata, packet)
    }

    /// Whether the open segment must be closed before this packet: it would grow past the size limit, or the packet
    /// is past the age limit.
    @inline(__always)
    private func mustRotate(_ writer: PcapngWriter, _ metadata: PacketMetadata, capturedLength: Int) -> Bool {
        let size = writer.totalBytes &+ UInt64(
            PcapngWriter.blockLength(capturedLength: capturedLength, withProcess: metadata.processID != 0))
        let first = currentFirstPacketNanoseconds
        let hasPackets = writer.committedPackets &+ writer.bufferedPacketCount > 0
        return hasPackets && (size > configuration.segmentBytes
            || (segmentNanoseconds > 0 && metadata.timestampNanoseconds > first
                && metadata.timestampNanoseconds &- first >= segmentNanoseconds))
    }

    /// `append` when no segment is open or the open one must be closed first.
    private func appendRotating(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {
        guard writing else {
            drop(packets: 1, bytes: UInt64(packet.count))
            return
        }
        if let segment = current, mustRotate(segment.writer, metadata, capturedLength: packet.count) {
            closeCurrentSegment()
        }
        guard writing, let segment = current ?? openSegment(firstPacketNanoseconds: metadata.timestampNanoseconds) else {
            drop(packets: 1, bytes: UInt64(packet.count))
            return
        }
        do {
            try segment.writer.append(metadata, packet)
        } catch {
            handleWriteFailure(error)
        }
    }

    /// Flushes at least every `flushIntervalNanoseconds`, rotates by age, and retries after write errors.
    /// `nowNanoseconds` is wall-clock time, the clock packet timestamps use.
    public func tick(nowNanoseconds now: UInt64) {
        if !writing {
            if let retryAt = retryAtNanoseconds {
                if now >= retryAt { retryWriting() }
            } else {
                retryAtNanoseconds = now &+ configuration.retryIntervalNanoseconds
            }
            if now < lastFlushNanoseconds || now - lastFlushNanoseconds >= configuration.flushIntervalNanoseconds {
                publish()  // the drop counters
                lastFlushNanoseconds = now
            }
            return
        }
        guard let segment = current else { return }
        if segmentNanoseconds > 0 && now > segment.firstPacketNanoseconds
            && now - segment.firstPacketNanoseconds >= segmentNanoseconds
        {
            closeCurrentSegment()
            lastFlushNanoseconds = now
        } else if now < lastFlushNanoseconds || now - lastFlushNanoseconds >= configuration.flushIntervalNanoseconds {
            flush(waiting: false)
            lastFlushNanoseconds = now
        } else {
            // Between flushes, hand on what the background writes finished (live dissection waits for it).
            do {
                try segment.writer.settle(waiting: false)
            } catch {
                handleWriteFailure(error)
            }
        }
    }

    /// Writes everything buffered, applies retention and publishes statistics.
    public func flush() { flush(waiting: true) }

    /// Waits for the open segment's background writes and publishes what they wrote (tests: after `tick`).
    func settle() {
        do {
            try current?.writer.settle(waiting: true)
        } catch {
            handleWriteFailure(error)
        }
        publish()
    }

    /// `waiting` false: direct writes finish in the background (the capture thread does not wait for the disk).
    func flush(waiting: Bool) {
        if let segment = current {
            do {
                if waiting { try segment.writer.flush() } else { try segment.writer.flushInBackground() }
                failedRetries = 0
            } catch {
                handleWriteFailure(error)
            }
        }
        enforceRetention()
        publish()
    }

    /// Flushes and closes the open segment; a later `append` starts a new one.
    public func close() {
        closeCurrentSegment()
        publish()
    }

    // MARK: - Segments

    private func openSegment(firstPacketNanoseconds: UInt64) -> OpenSegment? {
        let sequence = nextSequence
        nextSequence += 1  // even on failure, so a name taken by a stray file is not tried forever
        let path = segmentsDirectory + "/"
            + SegmentName.make(firstPacketNanoseconds: firstPacketNanoseconds, sequence: sequence)
        let (fd, code) = POSIX.createExclusive(path)
        guard fd >= 0 else {
            suspendWriting(errno: code)
            return nil
        }
        let written: ((UnsafeRawBufferPointer, UInt64) -> Void)? = tap.map { tap in
            { bytes, offset in tap.recorded(bytes, segment: sequence, path: path, offset: offset) }
        }
        let directFD = configuration.directWrites ? POSIX.openForDirectWriting(path) : -1
        let writer = PcapngWriter(
            fileDescriptor: fd, directFileDescriptor: directFD, buffers: writeBuffers, written: written)
        let segment = OpenSegment(
            path: path, sequence: sequence, firstPacketNanoseconds: firstPacketNanoseconds, fileDescriptor: fd,
            directFileDescriptor: directFD, writer: writer)
        current = segment
        statistics.segmentsCreated.add(1, ordering: .relaxed)
        return segment
    }

    /// Flushes the open segment, closes its file and moves it to the closed list (or removes it if it holds no
    /// packet), then applies retention.
    func closeCurrentSegment() {
        guard let segment = current else { return }
        do {
            try segment.writer.flush()
            failedRetries = 0
        } catch {
            handleWriteFailure(error)  // retires the segment itself
            return
        }
        retire(segment)
        enforceRetention()
        publish()
    }

    private func retire(_ segment: OpenSegment) {
        current = nil
        POSIX.closeFile(segment.fileDescriptor)
        if segment.directFileDescriptor >= 0 { POSIX.closeFile(segment.directFileDescriptor) }
        closedPacketsWritten &+= segment.writer.committedPackets
        closedBytesWritten &+= segment.writer.committedPacketBytes
        if segment.writer.committedPackets == 0 {
            _ = POSIX.removeFile(segment.path)
            statistics.segmentsDeleted.add(1, ordering: .relaxed)
            return
        }
        var info = segment.info
        info.isOpen = false
        closed.append(info)
        closedBytes &+= info.bytes
    }

    // MARK: - Write errors

    private func handleWriteFailure(_ error: PcapngWriteError) {
        drop(packets: error.lostPackets, bytes: error.lostPacketBytes)
        guard error.reason != .packetTooLarge else { return }
        if let segment = current { retire(segment) }
        suspendWriting(errno: error.errno)
        publish()
    }

    private func suspendWriting(errno code: Int32) {
        writing = false
        lastErrno = code
        retryAtNanoseconds = nil
        statistics.writeErrors.add(1, ordering: .relaxed)
        statistics.lastWriteErrno.store(code, ordering: .relaxed)
        statistics.isWriting.store(false, ordering: .relaxed)
    }

    private func retryWriting() {
        enforceRetention()
        let diskFull = lastErrno == POSIX.noSpace || lastErrno == POSIX.quotaExceeded
        if diskFull && configuration.deleteOldestWhenDiskFull {
            // statvfs cannot see quotas, so a retry that already failed counts as proof the space is still missing.
            let wanted = min(configuration.segmentBytes, 1 << 20)
            let free = POSIX.availableBytes(segmentsDirectory) ?? 0
            if failedRetries > 0 || free < wanted { deleteOldestSegment() }
        }
        failedRetries += 1
        writing = true
        retryAtNanoseconds = nil
        statistics.isWriting.store(true, ordering: .relaxed)
    }

    @inline(__always)
    private func drop(packets: UInt64, bytes: UInt64) {
        packetsDropped &+= packets
        bytesDropped &+= bytes
    }

    // MARK: - Retention and statistics

    /// Deletes the oldest closed segments while the recording exceeds its budget.
    func enforceRetention() {
        let openBytes = current?.writer.committedBytes ?? 0
        while closedBytes &+ openBytes > configuration.retentionBytes, !closed.isEmpty {
            guard deleteOldestSegment() else { return }
        }
    }

    @discardableResult
    private func deleteOldestSegment() -> Bool {
        guard let oldest = closed.first, POSIX.removeFile(oldest.path) == 0 else { return false }
        closed.removeFirst()
        closedBytes &-= oldest.bytes
        statistics.segmentsDeleted.add(1, ordering: .relaxed)
        return true
    }

    /// Copies the capture thread's view into `statistics` and `catalog`.
    func publish() {
        let open = current?.info
        statistics.packetsWritten.store(closedPacketsWritten &+ (current?.writer.committedPackets ?? 0), ordering: .relaxed)
        statistics.bytesWritten.store(closedBytesWritten &+ (current?.writer.committedPacketBytes ?? 0), ordering: .relaxed)
        statistics.packetsDropped.store(packetsDropped, ordering: .relaxed)
        if let writer = current?.writer { statistics.isWritingDirectly.store(writer.writesDirectly, ordering: .relaxed) }
        statistics.bytesDropped.store(bytesDropped, ordering: .relaxed)
        statistics.segmentCount.store(UInt64(closed.count + (open == nil ? 0 : 1)), ordering: .relaxed)
        statistics.bytesOnDisk.store(closedBytes &+ (open?.bytes ?? 0), ordering: .relaxed)
        let openOnDisk = (open?.packetCount ?? 0) > 0 ? open : nil
        let oldest = closed.first?.firstPacketNanoseconds ?? openOnDisk?.firstPacketNanoseconds
        let newest = openOnDisk?.lastPacketNanoseconds ?? closed.last?.lastPacketNanoseconds
        statistics.oldestPacketNanoseconds.store(oldest ?? 0, ordering: .relaxed)
        statistics.newestPacketNanoseconds.store(newest ?? 0, ordering: .relaxed)
        // The open segment is listed once its first bytes are in the file: writes finish on a background thread, and
        // a reader that opened an empty file would find no pcapng header to read.
        let listedOpen = open.flatMap { $0.bytes > 0 ? $0 : nil }
        catalog.replace(with: listedOpen.map { closed + [$0] } ?? closed)
    }
}
