/// Bytes one direction delivered that the dissector has not consumed yet.
struct StreamBuffer {
    private var storage: [UInt8] = []
    private var start = 0
    /// Packet time of the oldest byte held.
    private(set) var firstByteNanoseconds: UInt64 = 0

    var count: Int { storage.count - start }
    var isEmpty: Bool { storage.count == start }

    mutating func append(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        guard bytes.count > 0 else { return }
        if isEmpty {
            firstByteNanoseconds = now
            storage.removeAll(keepingCapacity: true)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Drops `n` bytes from the front.
    mutating func consume(_ n: Int) {
        start += min(max(n, 0), count)
        if start == storage.count {
            clear()
        } else if start >= 64 * 1024, start * 2 >= storage.count {
            storage.removeFirst(start)
            start = 0
        }
    }

    /// Drops everything, releasing large allocations.
    mutating func clear() {
        storage.removeAll(keepingCapacity: storage.capacity <= 64 * 1024)
        start = 0
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        storage.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }
}
