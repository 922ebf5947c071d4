/// What the reassembler hands on, in stream order.
enum StreamChunk {
    /// Contiguous bytes (valid only during the delivery call).
    case data(UnsafeRawBufferPointer)
    /// This many bytes of the stream were never seen.
    case gap(Int)
}

/// How a segment was taken.
enum SegmentOutcome: Equatable {
    /// Some of its bytes were new and delivered (or it carried none).
    case delivered
    /// All its bytes had been delivered before: a retransmission or a second copy.
    case duplicate
    /// It lies ahead of a hole and waits in the out-of-order queue.
    case queued
    /// It lies ahead of a hole and the memory bound refused it.
    case dropped
}

/// A segment that arrived ahead of a hole; its captured bytes are copied.
struct QueuedSegment {
    var sequence: UInt32
    var bytes: [UInt8]
    /// Length in sequence space (more than `bytes.count` when the snap length cut it).
    var wireLength: Int
}

/// One direction of a TCP connection: puts segments back in sequence order, drops what was already delivered
/// (retransmissions, overlaps, the second eBPF copy), and turns holes that do not fill into explicit gaps.
struct TCPStreamReassembler {
    private(set) var started = false
    /// The sequence number of the next byte to deliver.
    private(set) var nextSequence: UInt32 = 0
    private(set) var queue: [QueuedSegment] = []
    /// Captured bytes held in `queue`.
    private(set) var queuedBytes = 0
    /// Packet time at which the oldest unfilled hole appeared.
    private(set) var holeSinceNanoseconds: UInt64 = 0
    /// Packet time at which an acknowledgment first covered the oldest hole; 0 when none has.
    private(set) var holeAcknowledgedSinceNanoseconds: UInt64 = 0

    /// Starts the stream at `sequence` (the byte after the SYN, or the first byte seen mid-stream).
    mutating func start(at sequence: UInt32) {
        started = true
        nextSequence = sequence
    }

    /// Signed distance from the next expected byte to `sequence`, modulo 2^32.
    @inline(__always)
    private func offset(of sequence: UInt32) -> Int {
        Int(Int32(bitPattern: sequence &- nextSequence))
    }

    /// Takes one segment: `payload` holds the captured bytes and `missingTail` the bytes the snap length cut off.
    /// `allowance` is how many more bytes the queue may hold (per-connection and global bounds combined).
    mutating func receive(
        sequence: UInt32, payload: UnsafeRawBufferPointer, missingTail: Int, now: UInt64, allowance: Int,
        deliver: (StreamChunk) -> Void
    ) -> SegmentOutcome {
        let length = payload.count + missingTail
        if !started { start(at: sequence) }
        guard length > 0 else { return .delivered }
        let distance = offset(of: sequence)
        if distance + length <= 0 { return .duplicate }
        if distance > 0 {
            if isQueued(sequence: sequence, wireLength: length) { return .duplicate }
            guard payload.count <= allowance else { return .dropped }
            enqueue(QueuedSegment(sequence: sequence, bytes: Array(payload), wireLength: length), now: now)
            return .queued
        }
        emit(payload: payload, wireLength: length, skipping: -distance, deliver: deliver)
        nextSequence = sequence &+ UInt32(truncatingIfNeeded: length)
        drainContiguous(deliver: deliver)
        return .delivered
    }

    /// Declares the first hole lost: delivers a gap up to the first queued segment and everything contiguous after
    /// it. Returns the gap length (0 when nothing was queued).
    @discardableResult
    mutating func skipHole(now: UInt64, deliver: (StreamChunk) -> Void) -> Int {
        guard let first = queue.first else { return 0 }
        let hole = offset(of: first.sequence)
        if hole > 0 {
            deliver(.gap(hole))
            nextSequence = first.sequence
        }
        drainContiguous(deliver: deliver)
        holeSinceNanoseconds = queue.isEmpty ? 0 : now
        holeAcknowledgedSinceNanoseconds = 0
        return max(hole, 0)
    }

    /// Notes the receiver's acknowledgment: once it covers the oldest hole, the hole's bytes reached the receiver,
    /// so unless the capture merely has them late (another CPU's ring) it missed them for good, and no
    /// retransmission will fill the hole.
    mutating func noteAcknowledgment(_ acknowledgment: UInt32, now: UInt64) {
        guard holeAcknowledgedSinceNanoseconds == 0, let first = queue.first,
            Int32(bitPattern: acknowledgment &- first.sequence) >= 0
        else { return }
        holeAcknowledgedSinceNanoseconds = now
    }

    /// Delivers everything queued, declaring every hole a gap (end of connection or capture).
    mutating func flushAll(now: UInt64, deliver: (StreamChunk) -> Void) -> Int {
        var total = 0
        while !queue.isEmpty { total += skipHole(now: now, deliver: deliver) }
        return total
    }

    /// Whether a queued segment already covers this one (the same out-of-order segment again).
    private func isQueued(sequence: UInt32, wireLength: Int) -> Bool {
        queue.contains { $0.sequence == sequence && $0.wireLength >= wireLength }
    }

    private mutating func enqueue(_ segment: QueuedSegment, now: UInt64) {
        if queue.isEmpty { holeSinceNanoseconds = now }
        // Segments mostly arrive in order even behind a hole: search from the end.
        var index = queue.count
        while index > 0, Int32(bitPattern: queue[index - 1].sequence &- segment.sequence) > 0 { index -= 1 }
        queue.insert(segment, at: index)
        queuedBytes += segment.bytes.count
    }

    private mutating func drainContiguous(deliver: (StreamChunk) -> Void) {
        while let first = queue.first, offset(of: first.sequence) <= 0 {
            holeAcknowledgedSinceNanoseconds = 0  // that hole is filled
            queue.removeFirst()
            queuedBytes -= first.bytes.count
            let distance = offset(of: first.sequence)
            if distance + first.wireLength > 0 {
                first.bytes.withUnsafeBytes { bytes in
                    emit(payload: bytes, wireLength: first.wireLength, skipping: -distance, deliver: deliver)
                }
                nextSequence = first.sequence &+ UInt32(truncatingIfNeeded: first.wireLength)
            }
        }
        if queue.isEmpty { holeSinceNanoseconds = 0 }
    }

    /// Delivers a segment minus the `skip` bytes already delivered; bytes past the captured ones are a gap.
    private func emit(payload: UnsafeRawBufferPointer, wireLength: Int, skipping skip: Int, deliver: (StreamChunk) -> Void) {
        if skip < payload.count {
            deliver(.data(payload.suffix(from: skip)))
            if wireLength > payload.count { deliver(.gap(wireLength - payload.count)) }
        } else if skip < wireLength {
            deliver(.gap(wireLength - skip))
        }
    }
}
