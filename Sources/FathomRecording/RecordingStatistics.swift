import Synchronization

/// Counters of a `SegmentStore`, updated by the capture thread and readable from any thread.
/// Packet counters are published on every flush and `tick` (at least every ~100 ms), not per packet.
public final class RecordingStatistics: Sendable {
    /// A consistent-enough copy of every counter (each value is read atomically, not all at one instant).
    public struct Snapshot: Sendable, Equatable {
        /// Packets and captured bytes that reached the segment files.
        public var packetsWritten: UInt64
        public var bytesWritten: UInt64
        /// Packets and captured bytes accepted while writing was failing (disk full…) and therefore lost.
        public var packetsDropped: UInt64
        public var bytesDropped: UInt64
        /// Failed writes (and failed segment creations).
        public var writeErrors: UInt64
        /// errno of the last failed write, 0 if none.
        public var lastWriteErrno: Int32
        /// False while writing is suspended after an error, until a retry succeeds.
        public var isWriting: Bool
        /// Whether the open segment's whole pages bypass the page cache (O_DIRECT).
        public var isWritingDirectly: Bool
        public var segmentsCreated: UInt64
        public var segmentsDeleted: UInt64
        public var segmentCount: UInt64
        /// Bytes of all segment files, as written so far.
        public var bytesOnDisk: UInt64
        /// Torn or empty segments repaired or removed at start-up.
        public var repairs: UInt64
        /// Timestamp of the oldest and newest packet on disk, 0 when there are none.
        public var oldestPacketNanoseconds: UInt64
        public var newestPacketNanoseconds: UInt64
    }

    let packetsWritten = Atomic<UInt64>(0)
    let bytesWritten = Atomic<UInt64>(0)
    let packetsDropped = Atomic<UInt64>(0)
    let bytesDropped = Atomic<UInt64>(0)
    let writeErrors = Atomic<UInt64>(0)
    let lastWriteErrno = Atomic<Int32>(0)
    let isWriting = Atomic<Bool>(true)
    let isWritingDirectly = Atomic<Bool>(false)
    let segmentsCreated = Atomic<UInt64>(0)
    let segmentsDeleted = Atomic<UInt64>(0)
    let segmentCount = Atomic<UInt64>(0)
    let bytesOnDisk = Atomic<UInt64>(0)
    let repairs = Atomic<UInt64>(0)
    let oldestPacketNanoseconds = Atomic<UInt64>(0)
    let newestPacketNanoseconds = Atomic<UInt64>(0)

    init() {}

    /// Reads every counter.
    public func snapshot() -> Snapshot {
        Snapshot(
            packetsWritten: packetsWritten.load(ordering: .relaxed),
            bytesWritten: bytesWritten.load(ordering: .relaxed),
            packetsDropped: packetsDropped.load(ordering: .relaxed),
            bytesDropped: bytesDropped.load(ordering: .relaxed),
            writeErrors: writeErrors.load(ordering: .relaxed),
            lastWriteErrno: lastWriteErrno.load(ordering: .relaxed),
            isWriting: isWriting.load(ordering: .relaxed),
            isWritingDirectly: isWritingDirectly.load(ordering: .relaxed),
            segmentsCreated: segmentsCreated.load(ordering: .relaxed),
            segmentsDeleted: segmentsDeleted.load(ordering: .relaxed),
            segmentCount: segmentCount.load(ordering: .relaxed),
            bytesOnDisk: bytesOnDisk.load(ordering: .relaxed),
            repairs: repairs.load(ordering: .relaxed),
            oldestPacketNanoseconds: oldestPacketNanoseconds.load(ordering: .relaxed),
            newestPacketNanoseconds: newestPacketNanoseconds.load(ordering: .relaxed))
    }
}
