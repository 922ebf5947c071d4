import Foundation

/// Direct-I/O buffers of one size (`POSIX.allocateIOBuffer`), kept for reuse by the writers of successive segments.
/// A buffer freed goes back to the kernel, and a new one costs a page fault and the zeroing of every page on first
/// touch: allocated afresh for each 64 MiB segment, that was a sixth of the recording's CPU under a packet flood.
/// At most `limit` idle buffers are kept; those given back beyond it are freed. Thread-safe.
public final class IOBufferPool: @unchecked Sendable {
    public let byteCount: Int
    private let limit: Int
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []

    init(byteCount: Int, limit: Int) {
        self.byteCount = byteCount
        self.limit = limit
    }

    deinit {
        for buffer in idle { buffer.deallocate() }
    }

    /// An idle buffer, or a new one.
    func take() -> UnsafeMutableRawPointer {
        lock.lock()
        let reused = idle.popLast()
        lock.unlock()
        return reused ?? POSIX.allocateIOBuffer(byteCount: byteCount)
    }

    /// Takes back a buffer of this pool's size.
    func give(_ buffer: UnsafeMutableRawPointer) {
        lock.lock()
        let kept = idle.count < limit
        if kept { idle.append(buffer) }
        lock.unlock()
        if !kept { buffer.deallocate() }
    }
}
