import Glibc
import FathomModel

/// Why a `PcapngWriter` could not write: the errno, and what was lost with the failed write.
public struct PcapngWriteError: Error, Sendable, CustomStringConvertible {
    /// errno of the failed write(2) (ENOSPC on a full disk), or 0 for `packetTooLarge`/`writerFailed`.
    public var errno: Int32
    /// Packets that were accepted by `append` but never reached the file, including the one being appended.
    public var lostPackets: UInt64
    /// Captured bytes of those packets.
    public var lostPacketBytes: UInt64
    /// What went wrong.
    public var reason: Reason

    /// The ways an append or flush can fail.
    public enum Reason: Sendable {
        /// write(2) failed; the file was truncated back to its last complete block.
        case writeFailed
        /// An earlier write failed; the writer accepts nothing more.
        case writerFailed
        /// A packet longer than a pcapng block can hold.
        case packetTooLarge
    }

    public var description: String {
        switch reason {
        case .writeFailed: "pcapng write failed: \(POSIX.describe(errno: errno)); \(lostPackets) packets lost"
        case .writerFailed: "pcapng writer already failed; packet not written"
        case .packetTooLarge: "packet too large for a pcapng block"
        }
    }
}

/// Streams pcapng to a file descriptor: one SHB, an IDB per (capture source, link type) the first time it is
/// used, then one EPB per packet carrying the direction in epb_flags and `FathomPacketOption`.
///
/// Blocks are encoded into a preallocated buffer that is written out when it fills or on `flush()`; after a flush
/// the file ends on a block boundary (between flushes, with direct I/O, it may end inside one, and a crash can leave
/// a torn last block that the segment store repairs). `append` allocates nothing unless a packet is larger than the
/// buffer (it then grows once). Output is little-endian on every host.
/// The writer does not own the descriptors: the caller closes them. Single-threaded.
///
/// Direct I/O: given a second descriptor on the file opened with O_DIRECT, the buffer's whole pages go to the disk
/// without passing through the page cache (on a VM a buffered write costs ~20-30x the CPU of a direct one, and a
/// recording is written once and read rarely). The last, partial page is written through the ordinary descriptor so
/// the file still ends on a block boundary after each flush, and is kept at the head of the buffer: the next direct
/// write starts on that page boundary and rewrites it whole. Direct writes happen on a thread of their own
/// (`BackgroundFileWrites`): the capture thread hands a full buffer over and goes on in another.
public final class PcapngWriter {
    /// 2 MiB: thousands of small packets per write(2), in one transparent huge page (see `POSIX.allocateIOBuffer`).
    public static let defaultBufferCapacity = 2 << 20
    /// Largest packet accepted; a pcapng block length is 32 bits and readers refuse absurd blocks.
    public static let maximumPacketLength = 16 << 20

    private let fileDescriptor: Int32
    /// The same file opened with O_DIRECT, or -1: whole pages are written through it.
    private var directFileDescriptor: Int32
    /// Receives each flushed buffer instead of the file when set (exports streamed over HTTP); returns 0 or an errno.
    private let output: ((UnsafeRawBufferPointer) -> Int32)?
    /// Sees each buffer once it is in the file, with its file offset (live dissection reads it from memory).
    private let written: ((UnsafeRawBufferPointer, UInt64) -> Void)?
    /// Full buffers this many deep may wait for the disk before `append` waits: 8 MiB by default, with the capture
    /// rings behind them.
    static let backgroundDepth = 4
    /// The direct writes' thread, started with the first one.
    private var background: BackgroundFileWrites?
    /// Where buffers of `capacity` bytes come from and go back to: shared by the segments of a store, or the writer's
    /// own.
    private var buffers: IOBufferPool
    /// Packets and bytes of flushes handed to the background thread and not yet known to be written.
    private var pendingPackets: UInt64 = 0
    private var pendingPacketBytes: UInt64 = 0
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes in the buffer, `carried` included.
    private var used = 0
    /// Bytes at the head of the buffer that are already in the file: the start of the last page written, kept so the
    /// next direct write covers whole pages. Always 0 without direct I/O.
    private var carried = 0
    /// File offset of the buffer's first byte (a page boundary with direct I/O).
    private var bufferOffset: UInt64 = 0

    /// Interface keys (source code << 16 | link type) in interface-id order.
    private var interfaceKeys: [UInt32] = []
    private var lastInterfaceKey: UInt32 = .max
    private var lastInterfaceID: UInt32 = 0

    private var bufferedPackets: UInt64 = 0
    private var bufferedPacketBytes: UInt64 = 0
    private var bufferedLastTimestamp: UInt64 = 0
    private var failed = false

    /// The file's length at the last `flush()`, on a block boundary (whole pages written since, while the buffer
    /// filled, may follow it and end inside a block).
    public private(set) var committedBytes: UInt64 = 0
    /// Packets written to the file by `flush()`.
    public private(set) var committedPackets: UInt64 = 0
    /// Captured bytes of the packets written by successful flushes.
    public private(set) var committedPacketBytes: UInt64 = 0
    /// Timestamp of the last packet written by a successful flush, 0 before the first.
    public private(set) var committedLastTimestamp: UInt64 = 0
    /// Bytes encoded but not yet written.
    public var bufferedBytes: Int { used - carried }
    /// Packets encoded but not yet written.
    public var bufferedPacketCount: UInt64 { bufferedPackets }
    /// File length once the buffer is written.
    public var totalBytes: UInt64 { bufferOffset + UInt64(used) }
    /// Whether whole pages still go through O_DIRECT (false without a direct descriptor or once the file system
    /// refused a direct write).
    public var writesDirectly: Bool { directFileDescriptor >= 0 }

    /// Starts a section on `fileDescriptor` (an empty file opened for writing); nothing is written before a flush.
    /// `directFileDescriptor`, when not -1, is the same file opened with O_DIRECT (see the type's comment).
    /// `written`, when given, is called with each write's bytes (valid only during the call; they may end inside a
    /// block the next call completes) and their file offset once they are in the file: on the capture thread, or
    /// with direct I/O on the writes' thread (one call at a time, in file order).
    /// `buffers`, when given, supplies the buffers (of its size, whatever `bufferCapacity` says); see `bufferPool`.
    public init(fileDescriptor: Int32, directFileDescriptor: Int32 = -1,
                bufferCapacity: Int = PcapngWriter.defaultBufferCapacity, buffers: IOBufferPool? = nil,
                application: String = "fathom", written: ((UnsafeRawBufferPointer, UInt64) -> Void)? = nil) {
        self.fileDescriptor = fileDescriptor
        self.directFileDescriptor = directFileDescriptor
        output = nil
        self.written = written
        self.buffers = buffers ?? Self.bufferPool(bufferCapacity: bufferCapacity)
        capacity = self.buffers.byteCount
        buffer = self.buffers.take()
        encodeSectionHeader(application: application)
    }

    /// Buffers for writers of `bufferCapacity`, to share between the writers of successive files so that each does
    /// not fault in fresh memory: as many as one writer holds at once (its buffer and the queued ones) and one more.
    public static func bufferPool(bufferCapacity: Int = PcapngWriter.defaultBufferCapacity) -> IOBufferPool {
        IOBufferPool(byteCount: roundedCapacity(bufferCapacity), limit: backgroundDepth + 2)
    }

    /// At least two pages, in whole pages, so a full buffer always holds a whole page past the carried one.
    private static func roundedCapacity(_ requested: Int) -> Int {
        POSIX.wholePages(max(requested, 2 * POSIX.directAlignment))
    }

    /// Gives a buffer back to the pool, or frees it when it has another size (grown for an oversized packet).
    private func release(_ released: UnsafeMutableRawPointer, capacity releasedCapacity: Int) {
        if releasedCapacity == buffers.byteCount { buffers.give(released) } else { released.deallocate() }
    }

    /// Starts a section whose bytes go to `output` at each flush (it returns 0, or an errno to fail the writer).
    public init(bufferCapacity: Int = PcapngWriter.defaultBufferCapacity, application: String = "fathom",
                output: @escaping (UnsafeRawBufferPointer) -> Int32) {
        fileDescriptor = -1
        directFileDescriptor = -1
        self.output = output
        written = nil
        buffers = Self.bufferPool(bufferCapacity: bufferCapacity)
        capacity = buffers.byteCount
        buffer = buffers.take()
        encodeSectionHeader(application: application)
    }

    deinit {
        for done in background?.stop() ?? [] { release(done.job.buffer, capacity: done.job.capacity) }
        release(buffer, capacity: capacity)
    }

    /// Bytes the EPB of a packet with `capturedLength` bytes takes in the file.
    @inline(__always)
    /// `withProcess`: the packet carries a process id (FathomProcessOption).
    public static func blockLength(capturedLength: Int, withProcess: Bool = false, commentLength: Int = 0) -> Int {
        Pcapng.enhancedPacketOverhead + Pcapng.padded(capturedLength) + (withProcess ? Pcapng.processOptionLength : 0)
            + (commentLength > 0 ? 4 + Pcapng.padded(commentLength) : 0)
    }

    /// Encodes one packet, writing the buffer out first when the block does not fit.
    /// On a write failure the file is cut back to its last complete block and the writer refuses further packets.
    public func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) throws(PcapngWriteError) {
        try append(metadata, packet, comment: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Encodes one packet with an opt_comment (UTF-8, at most 65,535 bytes; longer comments are cut), which
    /// Wireshark shows as the packet's comment.
    @inline(__always)
    public func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer, comment: UnsafeRawBufferPointer)
        throws(PcapngWriteError)
    {
        let comment = UnsafeRawBufferPointer(rebasing: comment.prefix(Int(UInt16.max)))
        if failed {
            throw PcapngWriteError(errno: 0, lostPackets: 1, lostPacketBytes: UInt64(packet.count), reason: .writerFailed)
        }
        let captured = packet.count
        guard captured <= Self.maximumPacketLength else {
            throw PcapngWriteError(errno: 0, lostPackets: 1, lostPacketBytes: UInt64(captured), reason: .packetTooLarge)
        }
        let blockLength = Self.blockLength(
            capturedLength: captured, withProcess: metadata.processID != 0, commentLength: comment.count)
        let key = UInt32(FathomPacketOption.sourceCode(metadata.source)) << 16 | UInt32(metadata.linkType)
        let interfaceID: UInt32
        if key == lastInterfaceKey {
            interfaceID = lastInterfaceID
        } else {
            interfaceID = try interface(for: key, source: metadata.source, linkType: metadata.linkType,
                                        packetLength: captured, blockLength: blockLength)
        }
        try reserve(blockLength, packetLength: captured)
        encodeEnhancedPacket(metadata, packet, interfaceID: interfaceID, blockLength: blockLength, comment: comment)
        bufferedPackets &+= 1
        bufferedPacketBytes &+= UInt64(captured)
        bufferedLastTimestamp = metadata.timestampNanoseconds
    }

    /// Writes every encoded block to the file and waits until they are there.
    public func flush() throws(PcapngWriteError) { try write(completeBlocks: true, waiting: true) }

    /// Starts writing every encoded block; with direct I/O the write finishes on the background thread (`flush()`
    /// or a later write reports a failure).
    public func flushInBackground() throws(PcapngWriteError) { try write(completeBlocks: true, waiting: false) }

    /// Writes the buffer out. With `completeBlocks` false (the buffer is full, more is coming) and direct I/O, only
    /// whole pages go out: the file may end inside a block until the next flush, which saves writing the last page
    /// through the page cache only to have the next direct write flush and replace it.
    private func write(completeBlocks: Bool, waiting: Bool) throws(PcapngWriteError) {
        guard !failed else { return }
        try collectBackgroundWrites(waiting: false)
        if used > carried {
            if writesDirectly {
                submit(completeBlocks: completeBlocks)
            } else {
                try collectBackgroundWrites(waiting: true)  // the file's earlier bytes first
                try writeNow()
            }
        }
        if waiting { try collectBackgroundWrites(waiting: true) }
    }

    /// Hands the buffer to the background thread and goes on in a spare one.
    private func submit(completeBlocks: Bool) {
        let wholePages = used & ~(POSIX.directAlignment - 1)
        let end = !completeBlocks && wholePages > carried ? wholePages : used
        var commit: BackgroundFileWrites.Commit?
        if end == used {
            commit = .init(fileBytes: bufferOffset + UInt64(used), packets: bufferedPackets,
                           packetBytes: bufferedPacketBytes, lastTimestamp: bufferedLastTimestamp)
            pendingPackets &+= bufferedPackets
            pendingPacketBytes &+= bufferedPacketBytes
            bufferedPackets = 0
            bufferedPacketBytes = 0
        }
        let job = BackgroundFileWrites.Job(
            buffer: buffer, capacity: capacity, offset: bufferOffset, fresh: carried, directBytes: wholePages,
            bufferedFrom: max(wholePages, carried), end: end, commit: commit)
        // The next buffer starts with what stays: the last partial page (already on its way to the file, carried so
        // the next direct write starts on a page boundary) or the bytes not written yet.
        let keepsWrittenPage = end == used
        let from = keepsWrittenPage ? wholePages : end
        let next = buffers.take()
        next.copyMemory(from: buffer + from, byteCount: used - from)
        buffer = next
        bufferOffset &+= UInt64(from)
        used -= from
        carried = keepsWrittenPage ? used : 0
        // The bytes are shown to `written` from the writes' thread once in the file, so a reader that goes to the
        // file for them finds them there.
        let written = self.written
        let writes = background ?? BackgroundFileWrites(
            fileDescriptor: fileDescriptor, directFileDescriptor: directFileDescriptor, depth: Self.backgroundDepth
        ) { job in
            written?(UnsafeRawBufferPointer(start: job.buffer + job.fresh, count: job.end - job.fresh),
                     job.offset + UInt64(job.fresh))
        }
        background = writes
        writes.submit(job)
    }

    /// Takes in the background writes finished so far (with `waiting`, all of them), without writing what is
    /// buffered: their bytes reach `written` and their packets the committed counts.
    public func settle(waiting: Bool) throws(PcapngWriteError) { try collectBackgroundWrites(waiting: waiting) }

    /// Takes in what the background thread finished: commits flushes, recycles buffers, and on a failed write fails
    /// the writer as a failed synchronous write would.
    private func collectBackgroundWrites(waiting: Bool) throws(PcapngWriteError) {
        guard let background else { return }
        var failure: Int32 = 0
        for done in background.finished(waiting: waiting) {
            let job = done.job
            defer { release(job.buffer, capacity: job.capacity) }
            if done.errno != 0 {
                failure = failure == 0 ? done.errno : failure
                continue
            }
            if let commit = job.commit {
                committedBytes = commit.fileBytes
                committedPackets &+= commit.packets
                committedPacketBytes &+= commit.packetBytes
                if commit.packets > 0 { committedLastTimestamp = commit.lastTimestamp }
                pendingPackets &-= commit.packets
                pendingPacketBytes &-= commit.packetBytes
            }
        }
        if background.refusedDirectWrites { directFileDescriptor = -1 }
        guard failure != 0 else { return }
        // Everything after the failed write was skipped: wait for the rest, then fail as a synchronous write would.
        for done in background.finished(waiting: true) { release(done.job.buffer, capacity: done.job.capacity) }
        bufferedPackets &+= pendingPackets
        bufferedPacketBytes &+= pendingPacketBytes
        pendingPackets = 0
        pendingPacketBytes = 0
        try fail(errno: failure)
    }

    /// Cuts the file back to the last flush that ended on a block boundary and refuses further packets.
    private func fail(errno code: Int32) throws(PcapngWriteError) {
        if output == nil { _ = POSIX.truncateFile(fileDescriptor, to: committedBytes) }
        failed = true
        let error = PcapngWriteError(errno: code, lostPackets: bufferedPackets,
                                     lostPacketBytes: bufferedPacketBytes, reason: .writeFailed)
        used = 0
        carried = 0
        bufferedPackets = 0
        bufferedPacketBytes = 0
        throw error
    }

    /// Writes the buffer on this thread, through the page cache or to an export's output: every block.
    private func writeNow() throws(PcapngWriteError) {
        let fresh = UnsafeRawBufferPointer(start: buffer + carried, count: used - carried)
        let code = output.map { $0(fresh) } ?? writeToFile(fresh, at: bufferOffset + UInt64(carried))
        if code != 0 { try fail(errno: code) }
        written?(fresh, bufferOffset + UInt64(carried))
        committedBytes = bufferOffset + UInt64(used)
        committedPackets &+= bufferedPackets
        committedPacketBytes &+= bufferedPacketBytes
        if bufferedPackets > 0 { committedLastTimestamp = bufferedLastTimestamp }
        bufferedPackets = 0
        bufferedPacketBytes = 0
        bufferOffset &+= UInt64(used)
        used = 0
        carried = 0
    }

    /// Writes `bytes` at `offset` through the page cache, then advises the kernel to drop them. Returns 0 or an errno.
    private func writeToFile(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> Int32 {
        let code = POSIX.writeAll(fileDescriptor, bytes, at: offset).errno
        if code == 0 { dropFromPageCache(from: offset, count: bytes.count) }
        return code
    }

    /// Start of the range written by the flush before the last one.
    private var unadvisedFrom: UInt64 = 0

    /// A recording is written once and read rarely: keeping it in the page cache would evict what the node's
    /// workloads use, and fresh page-cache pages are what writing costs most. POSIX_FADV_DONTNEED starts writeback
    /// of dirty pages and drops clean ones, so each range is advised twice: right after it is written, and again
    /// after the next flush, when its writeback has had time to finish.
    private func dropFromPageCache(from start: UInt64, count: Int) {
        let end = start + UInt64(count)
        _ = posix_fadvise(fileDescriptor, off_t(unadvisedFrom), off_t(end - unadvisedFrom), POSIX_FADV_DONTNEED)
        unadvisedFrom = start
    }

    // MARK: - Encoding

    private func interface(for key: UInt32, source: CaptureSource, linkType: UInt16,
                           packetLength: Int, blockLength: Int) throws(PcapngWriteError) -> UInt32 {
        let id: UInt32
        if let index = interfaceKeys.firstIndex(of: key) {
            id = UInt32(index)
        } else {
            let name = Array(Pcapng.interfaceName(for: source).utf8)
            // Reserve room for the IDB and the packet together so a flush never separates them.
            let idbLength = 20 + 4 + Pcapng.padded(name.count) + 8 + 4
            try reserve(idbLength + blockLength, packetLength: packetLength)
            id = UInt32(interfaceKeys.count)
            interfaceKeys.append(key)
            encodeInterfaceDescription(linkType: linkType, name: name, length: idbLength)
        }
        lastInterfaceKey = key
        lastInterfaceID = id
        return id
    }

    /// Makes `length` bytes free in the buffer, flushing and (for an oversized packet) growing it.
    @inline(__always)
    private func reserve(_ length: Int, packetLength: Int) throws(PcapngWriteError) {
        if used + length <= capacity { return }
        do {
            try write(completeBlocks: false, waiting: false)
        } catch {
            throw PcapngWriteError(errno: error.errno, lostPackets: error.lostPackets + 1,
                                   lostPacketBytes: error.lostPacketBytes + UInt64(packetLength), reason: error.reason)
        }
        if used + length > capacity {
            // From now on this writer's buffers are its own, of the larger size; buffers of the old size still in
            // flight are freed when they come back.
            let (previous, previousPool) = (buffer, buffers)
            buffers = Self.bufferPool(bufferCapacity: used + length)
            buffer = buffers.take()
            buffer.copyMemory(from: previous, byteCount: used)  // the bytes kept
            previousPool.give(previous)
            capacity = buffers.byteCount
        }
    }

    @inline(__always)
    private func put32(_ value: UInt32, _ offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inline(__always)
    private func put16(_ value: UInt16, _ offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    private func put64(_ value: UInt64, _ offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Writes an option header and value padded with zeros; returns the offset after it.
    private func putOption(_ code: UInt16, _ value: [UInt8], at offset: Int) -> Int {
        put16(code, offset)
        put16(UInt16(value.count), offset + 2)
        let padded = Pcapng.padded(value.count)
        (buffer + offset + 4).initializeMemory(as: UInt8.self, repeating: 0, count: padded)
        value.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { (buffer + offset + 4).copyMemory(from: base, byteCount: bytes.count) }
        }
        return offset + 4 + padded
    }

    private func encodeSectionHeader(application: String) {
        let app = Array(application.utf8.prefix(256))
        let length = 28 + 4 + Pcapng.padded(app.count) + 4
        let start = used
        put32(Pcapng.sectionHeaderBlock, start)
        put32(UInt32(length), start + 4)
        put32(Pcapng.byteOrderMagic, start + 8)
        put16(1, start + 12)  // major
        put16(0, start + 14)  // minor
        put64(UInt64.max, start + 16)  // section length unknown (-1)
        var offset = putOption(Pcapng.optionApplication, app, at: start + 24)
        put32(0, offset)  // opt_endofopt
        offset += 4
        put32(UInt32(length), offset)
        used = start + length
    }

    private func encodeInterfaceDescription(linkType: UInt16, name: [UInt8], length: Int) {
        let start = used
        put32(Pcapng.interfaceDescriptionBlock, start)
        put32(UInt32(length), start + 4)
        put16(linkType, start + 8)
        put16(0, start + 10)
        put32(0, start + 12)  // snaplen 0: no limit
        var offset = putOption(Pcapng.optionInterfaceName, name, at: start + 16)
        offset = putOption(Pcapng.optionTimestampResolution, [9], at: offset)  // nanoseconds
        put32(0, offset)
        offset += 4
        put32(UInt32(length), offset)
        used = start + length
    }

    @inline(__always)
    private func encodeEnhancedPacket(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer,
                                      interfaceID: UInt32, blockLength: Int, comment: UnsafeRawBufferPointer) {
        let start = used
        let captured = packet.count
        let padded = Pcapng.padded(captured)
        put32(Pcapng.enhancedPacketBlock, start)
        put32(UInt32(truncatingIfNeeded: blockLength), start + 4)
        put32(interfaceID, start + 8)
        put32(UInt32(truncatingIfNeeded: metadata.timestampNanoseconds >> 32), start + 12)
        put32(UInt32(truncatingIfNeeded: metadata.timestampNanoseconds), start + 16)
        put32(UInt32(truncatingIfNeeded: captured), start + 20)
        put32(metadata.originalLength, start + 24)
        let data = start + Pcapng.enhancedPacketHeaderLength
        if padded != captured { put32(0, data + padded - 4) }  // zero the padding; the copy overwrites the rest
        if let base = packet.baseAddress { (buffer + data).copyMemory(from: base, byteCount: captured) }
        var offset = data + padded
        put16(Pcapng.optionPacketFlags, offset)
        put16(4, offset + 2)
        put32(Pcapng.packetFlags(for: metadata.direction), offset + 4)
        offset += 8
        put16(Pcapng.optionCustomBinaryCopyable, offset)
        put16(UInt16(4 + FathomPacketOption.encodedLength), offset + 2)
        put32(FathomPacketOption.privateEnterpriseNumber, offset + 4)
        put32(UInt32(FathomPacketOption.version) | UInt32(FathomPacketOption.sourceCode(metadata.source)) << 8,
              offset + 8)
        put32(metadata.interfaceIndex, offset + 12)
        put64(metadata.cgroupID, offset + 16)
        put64(metadata.socketCookie, offset + 24)
        offset += 4 + 4 + FathomPacketOption.encodedLength
        if metadata.processID != 0 {
            put16(Pcapng.optionCustomBinaryCopyable, offset)
            put16(UInt16(4 + FathomProcessOption.encodedLength), offset + 2)
            put32(FathomPacketOption.privateEnterpriseNumber, offset + 4)
            put32(UInt32(FathomProcessOption.tag), offset + 8)
            put32(metadata.processID, offset + 12)
            offset += Pcapng.processOptionLength
        }
        if let base = comment.baseAddress, comment.count > 0 {
            put16(Pcapng.optionComment, offset)
            put16(UInt16(comment.count), offset + 2)
            let padded = Pcapng.padded(comment.count)
            if padded != comment.count { put32(0, offset + 4 + padded - 4) }
            (buffer + offset + 4).copyMemory(from: base, byteCount: comment.count)
            offset += 4 + padded
        }
        put32(0, offset)  // opt_endofopt
        put32(UInt32(truncatingIfNeeded: blockLength), offset + 4)
        used = start + blockLength
    }
}
