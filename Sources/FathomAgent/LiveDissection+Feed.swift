import FathomRecording
import Foundation
import Synchronization

/// The recording's freshly written bytes, handed from the capture thread to the dissection thread so live dissection
/// need not read back what was just written. Bounded: a fixed pool of buffers, each the size of the recording's
/// write buffer. The capture thread never waits: when every buffer is taken (dissection is behind) or a write is
/// larger than a buffer, the bytes are left out and counted, and the dissection thread reads them back from the
/// segment file instead, as it would without the feed. Nothing is dissected twice or skipped: the reader takes
/// from each handed-over buffer only the part past what it already read.
final class LiveFeed: RecordingTap, @unchecked Sendable {
    /// One write of the recording, copied.
    struct Chunk {
        let sequence: UInt64
        let path: String
        let offset: UInt64
        let buffer: UnsafeMutableRawPointer
        let count: Int

        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer, count: count) }
    }

    let bufferBytes: Int
    let bufferCount: Int
    /// Writes left out because every buffer was taken or the write was larger than one.
    let overflows = Atomic<UInt64>(0)
    /// Bytes handed over through memory.
    let bytesFed = Atomic<UInt64>(0)
    /// Whether the capture thread should copy at all (live dissection on).
    let enabled = Atomic<Bool>(true)
    private let lock = NSLock()
    private var pending: [Chunk] = []
    private var free: [UnsafeMutableRawPointer] = []
    private var allocated = 0
    /// Called after a chunk is queued, to wake the consumer.
    private let queued: @Sendable () -> Void

    init(bufferBytes: Int, bufferCount: Int, queued: @escaping @Sendable () -> Void) {
        self.bufferBytes = bufferBytes
        self.bufferCount = max(bufferCount, 1)
        self.queued = queued
        pending.reserveCapacity(self.bufferCount)
    }

    deinit {
        for chunk in pending { chunk.buffer.deallocate() }
        for buffer in free { buffer.deallocate() }
    }

    /// `RecordingTap`, on the capture thread: copies the bytes into a free buffer, or counts them as left out.
    func recorded(_ bytes: UnsafeRawBufferPointer, segment sequence: UInt64, path: String, offset: UInt64) {
        guard enabled.load(ordering: .relaxed), let base = bytes.baseAddress, !bytes.isEmpty else { return }
        guard bytes.count <= bufferBytes, let buffer = takeBuffer() else {
            overflows.add(1, ordering: .relaxed)
            return
        }
        buffer.copyMemory(from: base, byteCount: bytes.count)
        let chunk = Chunk(sequence: sequence, path: path, offset: offset, buffer: buffer, count: bytes.count)
        lock.lock()
        pending.append(chunk)
        lock.unlock()
        bytesFed.add(UInt64(bytes.count), ordering: .relaxed)
        queued()
    }

    /// Everything queued so far, oldest first; give each chunk back with `recycle` once read.
    func take() -> [Chunk] {
        lock.lock()
        defer { lock.unlock() }
        guard !pending.isEmpty else { return [] }
        let taken = pending
        pending.removeAll(keepingCapacity: true)
        return taken
    }

    func recycle(_ chunk: Chunk) {
        lock.lock()
        free.append(chunk.buffer)
        lock.unlock()
    }

    private func takeBuffer() -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        if let buffer = free.popLast() { return buffer }
        guard allocated < bufferCount else { return nil }
        allocated += 1
        return UnsafeMutableRawPointer.allocate(byteCount: bufferBytes, alignment: 8)
    }
}
