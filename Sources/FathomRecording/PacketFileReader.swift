import FathomModel

/// One packet handed out by `PacketFileReader`. `bytes` points into the reader's buffer and is valid only until
/// the next call to `next()`: copy what must outlive it.
public struct PacketRecord {
    /// Time, lengths, link type; direction from epb_flags; source, ifindex, cgroup and cookie from Fathom's option.
    public var metadata: PacketMetadata
    /// The captured bytes, a slice of the reader's buffer.
    public var bytes: UnsafeRawBufferPointer
    /// Offset of the packet's block (pcapng) or record header (pcap) in the file.
    public var fileOffset: UInt64
}

/// Reads packets from pcapng (any number of sections and interfaces, any byte order and timestamp resolution;
/// EPB, SPB and the obsolete PB; unknown blocks skipped) and classic pcap (µs and ns, both byte orders).
///
/// The file is read through one reusable buffer with pread(2), so iterating allocates nothing per packet and a
/// file that shrinks or disappears while being read is no danger. A file that ends inside a block (a crash during
/// a write) is read up to its last complete block; `next()` then returns nil and `tornTail` says what was left.
/// Link types are passed through as found, known or not. Single-threaded.
public final class PacketFileReader {
    /// The container the file turned out to be.
    public enum Format: Sendable, Equatable {
        case pcapng
        /// Classic libpcap format (tcpdump -w).
        case pcap
    }

    /// Blocks longer than this are treated as corruption rather than read into memory.
    public static let defaultMaximumBlockLength = 64 << 20

    /// Whether the file is pcapng or classic pcap, known from its first four bytes.
    public let format: Format
    /// Length of the file's complete part: the end of the last whole block or record read so far.
    public private(set) var validLength: UInt64 = 0
    /// Set once `next()` has returned nil when the file ends inside a block.
    public private(set) var tornTail: TornTail?

    let maximumBlockLength: Int
    let fileDescriptor: Int32  // -1 when reading from memory
    var storage: UnsafeMutableRawPointer
    var capacity: Int
    /// Bytes of `storage` holding file data.
    var count = 0
    /// Index in `storage` of the next unread byte.
    var cursor = 0
    /// File offset of `storage[0]`.
    var storageOffset: UInt64 = 0
    var sourceExhausted = false
    /// Set by `readAheadDirectly()`: the file arrives in chunks read ahead on a thread, and `storage` points into them.
    var readAhead: DirectReadAhead?
    /// Set by `readDirectly()`: refills bypass the page cache. `storageOffset` then stays aligned, so a refill starts
    /// at an aligned file offset and address.
    private(set) var readsDirectly = false
    /// Length of the block last handed out, skipped at the start of the next call.
    var pendingSkip = 0
    private var finished = false
    private var failure: PacketFileError?

    /// Whether the current pcapng section or pcap file is in the opposite byte order to the host.
    var swapped = false
    /// The current pcapng section's interfaces, in id order.
    var interfaces: [PacketInterface] = []
    /// The classic pcap file's only interface, set once its header is read.
    var pcapInterface: PacketInterface?

    /// Opens a file; throws when it cannot be opened or does not start like pcap or pcapng.
    public init(path: String, maximumBlockLength: Int = PacketFileReader.defaultMaximumBlockLength)
        throws(PacketFileError)
    {
        let (fd, code) = POSIX.openForReading(path)
        guard fd >= 0 else { throw PacketFileError(.io(errno: code), at: 0) }
        self.fileDescriptor = fd
        self.maximumBlockLength = maximumBlockLength
        // One megabyte, or less for a small file: segments and snapshots are often read many at a time.
        capacity = POSIX.wholePages(Int(min(POSIX.fileSize(descriptor: fd) ?? 0, 1 << 20)) + 1)
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: POSIX.directAlignment)
        do {
            format = try Self.detectFormat(try Self.readMagic(fd: fd))
        } catch {
            storage.deallocate()
            POSIX.closeFile(fd)
            throw error
        }
    }

    /// Reads a file already in memory (the bytes are copied once).
    public init(bytes: [UInt8], maximumBlockLength: Int = PacketFileReader.defaultMaximumBlockLength)
        throws(PacketFileError)
    {
        fileDescriptor = -1
        self.maximumBlockLength = maximumBlockLength
        capacity = max(bytes.count, 16)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { storage.copyMemory(from: base, byteCount: $0.count) } }
        self.storage = storage
        count = bytes.count
        sourceExhausted = true
        guard bytes.count >= 4 else {
            storage.deallocate()
            throw PacketFileError(.truncatedFileHeader, at: 0)
        }
        do {
            format = try Self.detectFormat(storage.loadUnaligned(as: UInt32.self))
        } catch {
            storage.deallocate()
            throw error
        }
    }

    deinit {
        if readAhead == nil { storage.deallocate() }  // else it owns the buffers `storage` points into
        if fileDescriptor >= 0 { POSIX.closeFile(fileDescriptor) }
    }

    /// The next packet, or nil at the end of the file (check `tornTail`). Errors are sticky: after one, every
    /// call throws it again.
    public func next() throws(PacketFileError) -> PacketRecord? {
        if let failure { throw failure }
        if finished { return nil }
        do {
            switch format {
            case .pcapng: return try nextPcapngPacket()
            case .pcap: return try nextPcapPacket()
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// Follows a file that is still being written: after `next()` returned nil at its end, looks for blocks appended
    /// since, starting again at the last complete block. Does nothing after an error or on an in-memory reader.
    public func resumeAtEnd() {
        guard failure == nil, finished, fileDescriptor >= 0 else { return }
        finished = false
        tornTail = nil
        sourceExhausted = false
    }

    /// Follows a file still being written from bytes its writer hands over (`bytes` are what was just written at
    /// `fileOffset`): the part not read yet comes from memory instead of the file, and the file itself is not read
    /// again until `resumeAtEnd()`. Bytes already read are ignored. Returns false, taking nothing, when `bytes`
    /// start past what was read (some were never handed over): `resumeAtEnd()` then reads the gap from the file.
    /// Invalidates the record `next()` returned last.
    public func supply(_ bytes: UnsafeRawBufferPointer, at fileOffset: UInt64) -> Bool {
        guard failure == nil, fileDescriptor >= 0, readAhead == nil else { return false }
        let end = storageOffset + UInt64(count)
        guard fileOffset <= end else { return false }
        let known = Int(end - fileOffset)
        guard known < bytes.count, let base = bytes.baseAddress else { return true }
        let fresh = bytes.count - known
        compact()
        reserve(count + fresh)
        (storage + count).copyMemory(from: base + known, byteCount: fresh)
        count += fresh
        finished = false
        tornTail = nil
        sourceExhausted = true
        return true
    }

    /// Refills bypass the page cache (O_DIRECT) from now on, in reads of up to `chunkSize` bytes. For a reader that
    /// follows a recording written with direct I/O: its bytes are not in the page cache, and reading them through it
    /// costs a page cache fill and a copy, more CPU than parsing them. A file system that refuses direct reads is read
    /// buffered again. Call before the first `next()`; false, changing nothing, when it is too late or not possible.
    @discardableResult
    public func readDirectly(chunkSize: Int = 2 << 20) -> Bool {
        guard !readsDirectly, readAhead == nil, fileDescriptor >= 0, storageOffset == 0, count == 0,
            POSIX.setDirect(fileDescriptor, true)
        else { return false }
        readsDirectly = true
        reserve(chunkSize)
        return true
    }

    /// Calls `body` for every remaining packet; the bytes are valid only during the call.
    public func forEach(_ body: (PacketMetadata, UnsafeRawBufferPointer) throws -> Void) throws {
        while let record = try next() { try body(record.metadata, record.bytes) }
    }

    // MARK: - Buffer

    /// File offset of the cursor.
    var cursorOffset: UInt64 { storageOffset + UInt64(cursor) }

    /// Makes `length` bytes readable from the cursor; false when the file ends first.
    func available(_ length: Int) throws(PacketFileError) -> Bool {
        if count - cursor >= length { return true }
        if sourceExhausted { return false }
        if let readAhead { return try availableReadingAhead(length, from: readAhead) }
        compact()
        reserve(cursor + length)
        while count - cursor < length && !sourceExhausted {
            if readsDirectly {
                // From the page holding the first missing byte: bytes already held there are read again.
                let start = count & ~(POSIX.directAlignment - 1)
                let wanted = capacity - start
                let n = POSIX.readOnceAt(fileDescriptor, storage + start, wanted, storageOffset + UInt64(start))
                if n == -Int(POSIX.invalidArgument), POSIX.setDirect(fileDescriptor, false) {
                    readsDirectly = false
                    continue
                }
                if n < 0 { throw PacketFileError(.io(errno: Int32(-n)), at: storageOffset + UInt64(start)) }
                count = max(count, start + n)
                if n < wanted { sourceExhausted = true }
            } else {
                let wanted = capacity - count
                let n = POSIX.readAt(fileDescriptor, storage + count, wanted, storageOffset + UInt64(count))
                if n < 0 { throw PacketFileError(.io(errno: Int32(-n)), at: storageOffset + UInt64(count)) }
                count += n
                if n < wanted { sourceExhausted = true }
            }
        }
        return count - cursor >= length
    }

    /// Moves the unread bytes to the front of `storage`; reading directly, to the same place within their page.
    private func compact() {
        let shift = readsDirectly ? cursor & ~(POSIX.directAlignment - 1) : cursor
        guard shift > 0 else { return }
        storage.copyMemory(from: storage + shift, byteCount: count - shift)  // regions may overlap
        storageOffset += UInt64(shift)
        count -= shift
        cursor -= shift
    }

    /// Grows `storage` to hold at least `bytes` bytes (whole pages, page-aligned, as direct reads need).
    private func reserve(_ bytes: Int) {
        guard bytes > capacity else { return }
        let larger = POSIX.wholePages(max(bytes, capacity * 2))
        let grown = UnsafeMutableRawPointer.allocate(byteCount: larger, alignment: POSIX.directAlignment)
        grown.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = grown
        capacity = larger
    }

    /// Ends iteration: whatever is left after the cursor is an incomplete block.
    func endOfFile() -> PacketRecord? {
        finished = true
        let remaining = count - cursor
        if remaining > 0 { tornTail = TornTail(offset: cursorOffset, byteCount: UInt64(remaining)) }
        return nil
    }

    /// Steps over a complete block or record of `length` bytes.
    func consume(_ length: Int) {
        cursor += length
        validLength = cursorOffset
    }

    /// Hands out the packet in the complete block at the cursor; the block is stepped over on the next call.
    func packet(_ metadata: PacketMetadata, dataOffset: Int, capturedLength: Int, blockLength: Int) -> PacketRecord {
        pendingSkip = blockLength
        validLength = cursorOffset + UInt64(blockLength)
        return PacketRecord(
            metadata: metadata,
            bytes: UnsafeRawBufferPointer(start: storage + cursor + dataOffset, count: capturedLength),
            fileOffset: cursorOffset)
    }

    // MARK: - Field access relative to the cursor (callers ensure the bytes are available)

    @inline(__always)
    func byte(_ at: Int) -> UInt8 { storage.load(fromByteOffset: cursor + at, as: UInt8.self) }

    @inline(__always)
    func rawU32(_ at: Int) -> UInt32 { storage.loadUnaligned(fromByteOffset: cursor + at, as: UInt32.self) }

    @inline(__always)
    func u16(_ at: Int) -> UInt16 {
        let value = storage.loadUnaligned(fromByteOffset: cursor + at, as: UInt16.self)
        return swapped ? value.byteSwapped : value
    }

    @inline(__always)
    func u32(_ at: Int) -> UInt32 { swapped ? rawU32(at).byteSwapped : rawU32(at) }

    @inline(__always)
    func u64(_ at: Int) -> UInt64 {
        let value = storage.loadUnaligned(fromByteOffset: cursor + at, as: UInt64.self)
        return swapped ? value.byteSwapped : value
    }

    /// Copies `length` bytes at `at` out of the buffer (for rare fields such as interface names).
    func bytes(_ at: Int, _ length: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: storage + cursor + at, count: length))
    }

    // MARK: - Format detection

    private static func readMagic(fd: Int32) throws(PacketFileError) -> UInt32 {
        var magic: UInt32 = 0
        let n = withUnsafeMutableBytes(of: &magic) { POSIX.readAt(fd, $0.baseAddress!, 4, 0) }
        if n < 0 { throw PacketFileError(.io(errno: Int32(-n)), at: 0) }
        guard n == 4 else { throw PacketFileError(.truncatedFileHeader, at: 0) }
        return magic
    }

    private static func detectFormat(_ magic: UInt32) throws(PacketFileError) -> Format {
        if magic == Pcapng.sectionHeaderBlock { return .pcapng }
        if PcapMagic(rawValue: magic) != nil { return .pcap }
        throw PacketFileError(.badMagic(UInt32(bigEndian: magic)), at: 0)
    }
}
