import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension PacketFileReader {
    /// Reads the rest of the file ahead of the parser on a thread, with direct I/O (O_DIRECT) into aligned buffers
    /// that the packets are handed out of without a copy. For a finished file read whole once, as `fathom dissect`
    /// does: copying a file out of the page cache costs more CPU than parsing it, and a cold read through the page
    /// cache several times more. A file this reader follows as it grows (`resumeAtEnd`) must keep buffered reads.
    /// Call before the first `next()`. Returns false, changing nothing, when the file is not a regular file, the
    /// reader already started, or the file cannot be reopened for direct I/O; a file system that refuses direct
    /// reads later is read buffered by the same thread.
    @discardableResult
    public func readAheadDirectly() -> Bool {
        readAheadDirectly(chunkSize: DirectReadAhead.defaultChunkSize, headroom: DirectReadAhead.defaultHeadroom)
    }

    /// `readAheadDirectly()` with chunks of `chunkSize` bytes, each after `headroom` bytes where the unparsed tail of
    /// the previous chunk is copied (both multiples of the 4096-byte direct I/O alignment).
    func readAheadDirectly(chunkSize: Int, headroom: Int) -> Bool {
        guard readAhead == nil, fileDescriptor >= 0, count == 0, storageOffset == 0, !sourceExhausted
        else { return false }
        var info = stat()
        guard fstat(fileDescriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        // A second open file description of the same file: O_DIRECT is a property of the description.
        let direct = open("/proc/self/fd/\(fileDescriptor)", O_RDONLY | O_CLOEXEC | POSIX.directFlag)
        guard direct >= 0 else { return false }
        readAhead = DirectReadAhead(
            descriptor: direct, chunkSize: chunkSize, headroom: headroom, spill: storage, spillCapacity: capacity)
        return true
    }

    /// `available(_:)` when reading ahead: steps from chunk to chunk until `length` bytes follow the cursor. The tail
    /// left unparsed in the current chunk (a block straddling two chunks) is copied into the next chunk's headroom,
    /// or, when longer than the headroom, everything goes through the spill buffer.
    func availableReadingAhead(_ length: Int, from ahead: DirectReadAhead) throws(PacketFileError) -> Bool {
        while count - cursor < length {
            switch ahead.queue.take() {
            case .end:
                sourceExhausted = true
                return false
            case .failure(let code, let offset):
                throw PacketFileError(.io(errno: code), at: offset)
            case .chunk(let chunk):
                let tail = count - cursor
                storage = ahead.adopt(chunk, after: UnsafeRawPointer(storage + cursor), tail)
                storageOffset = chunk.fileOffset - UInt64(tail)
                count = tail + chunk.count
                cursor = 0
            }
        }
        return true
    }
}

/// The reader's side of a read-ahead: which chunk the reader's window lies in, and the spill buffer for blocks
/// longer than the headroom. Stops the thread when the reader goes away.
final class DirectReadAhead {
    static let defaultChunkSize = 2 << 20
    /// Room for the tail of a chunk before the next one: packets of any common snap length (256 KiB) fit. A whole
    /// huge page, so that each chunk is read into one (see `POSIX.allocateIOBuffer`).
    static let defaultHeadroom = 2 << 20
    let queue: ReadAheadQueue
    /// The chunk the reader's window points into, given back when the window moves on.
    private var current: Int?
    private var spill: UnsafeMutableRawPointer
    private var spillCapacity: Int

    init(descriptor: Int32, chunkSize: Int, headroom: Int, spill: UnsafeMutableRawPointer, spillCapacity: Int) {
        queue = ReadAheadQueue(descriptor: descriptor, chunkSize: chunkSize, headroom: headroom)
        self.spill = spill
        self.spillCapacity = spillCapacity
        queue.start()
    }

    deinit {
        queue.stop()
        spill.deallocate()
    }

    /// The new window: `tail` bytes at `tailStart` followed by the chunk's bytes. In the chunk's own buffer when the
    /// tail fits its headroom (no copy of the chunk), else in the spill buffer.
    func adopt(_ chunk: ReadAheadQueue.Chunk, after tailStart: UnsafeRawPointer, _ tail: Int)
        -> UnsafeMutableRawPointer
    {
        let window: UnsafeMutableRawPointer
        if tail <= queue.headroom {
            window = chunk.data - tail
            window.copyMemory(from: tailStart, byteCount: tail)
            moveWindow(to: chunk.index)
        } else {
            let needed = tail + chunk.count
            if needed > spillCapacity {
                let larger = UnsafeMutableRawPointer.allocate(byteCount: max(needed, spillCapacity * 2), alignment: 8)
                larger.copyMemory(from: tailStart, byteCount: tail)
                spill.deallocate()
                spill = larger
                spillCapacity = max(needed, spillCapacity * 2)
            } else {
                spill.copyMemory(from: tailStart, byteCount: tail)  // the tail may already be in the spill buffer
            }
            (spill + tail).copyMemory(from: chunk.data, byteCount: chunk.count)
            moveWindow(to: nil)
            queue.giveBack(chunk.index)
            window = spill
        }
        return window
    }

    private func moveWindow(to index: Int?) {
        if let current { queue.giveBack(current) }
        current = index
    }
}

/// The read-ahead thread and its buffers: the thread fills free buffers in file order and queues them; the reader
/// takes them in turn and gives each back when it has moved past it.
final class ReadAheadQueue: @unchecked Sendable {
    /// A filled buffer: `count` bytes of the file from `fileOffset` at `data`, with the buffer's headroom before it.
    struct Chunk {
        let index: Int
        let data: UnsafeMutableRawPointer
        let count: Int
        let fileOffset: UInt64
    }

    enum Item {
        case chunk(Chunk)
        case end
        case failure(errno: Int32, offset: UInt64)
    }

    /// Two buffers: one the reader parses, one the thread fills.
    static let bufferCount = 2

    let headroom: Int
    private let chunkSize: Int
    private let descriptor: Int32
    private let buffers: [UnsafeMutableRawPointer]
    // Shared with the thread, under `condition`.
    private let condition = NSCondition()
    private var ready: [Item] = []
    private var free: [Int]
    private var finished = false
    private var stopped = false

    init(descriptor: Int32, chunkSize: Int, headroom: Int) {
        self.descriptor = descriptor
        self.chunkSize = chunkSize
        self.headroom = headroom
        buffers = (0..<ReadAheadQueue.bufferCount).map { _ in
            POSIX.allocateIOBuffer(byteCount: headroom + chunkSize)
        }
        free = Array(buffers.indices)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        close(descriptor)
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "fathom-read-ahead"
        thread.start()
    }

    /// Ends the thread after its current read; the buffers go with the last reference.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk in file order, waiting for the thread to read it; `.end` (or the failure) once the file is done.
    func take() -> Item {
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty {
            if finished { return .end }
            condition.wait()
        }
        let item = ready.removeFirst()
        if case .failure = item { ready.insert(item, at: 0) }  // sticky
        return item
    }

    func giveBack(_ index: Int) {
        condition.lock()
        free.append(index)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        var offset: UInt64 = 0
        while true {
            condition.lock()
            while free.isEmpty, !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let index = free.removeFirst()
            condition.unlock()

            let data = buffers[index] + headroom
            let (count, code) = read(into: data, at: offset)
            condition.lock()
            if count > 0 { ready.append(.chunk(Chunk(index: index, data: data, count: count, fileOffset: offset))) }
            if code != 0 {
                ready.append(.failure(errno: code, offset: offset + UInt64(count)))
            }
            let done = code != 0 || count < chunkSize
            finished = done
            condition.broadcast()
            condition.unlock()
            if done { return }
            offset += UInt64(count)
        }
    }

    /// Fills one chunk from `offset`; a short count means the end of the file. Direct reads must stay aligned, so a
    /// read that ends off the alignment can only have hit the end. A file system refusing direct reads (EINVAL) is
    /// read buffered from then on.
    private func read(into data: UnsafeMutableRawPointer, at offset: UInt64) -> (count: Int, errno: Int32) {
        var total = 0
        while total < chunkSize {
            let n = pread(descriptor, data + total, chunkSize - total, off_t(offset) + off_t(total))
            if n > 0 {
                total += n
                if n % POSIX.directAlignment != 0, isDirect { break }
            } else if n == 0 {
                break
            } else if errno == EINTR {
                continue
            } else if errno == EINVAL, isDirect {
                guard POSIX.setDirect(descriptor, false) else { return (total, EINVAL) }
                isDirect = false
            } else {
                return (total, errno)
            }
        }
        return (total, 0)
    }

    /// Whether reads still bypass the page cache (only the thread touches it).
    private var isDirect = true
}
