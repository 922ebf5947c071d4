import Synchronization

/// One segment file of the recording.
public struct SegmentInfo: Sendable, Equatable {
    /// Absolute or relative as the configured directory was given: `DIRECTORY/segments/NAME.pcapng`.
    public var path: String
    /// Creation order, also encoded in the file name.
    public var sequence: UInt64
    /// Timestamp of the segment's first packet, also encoded in the file name.
    public var firstPacketNanoseconds: UInt64
    /// Timestamp of the last packet written to the file so far.
    public var lastPacketNanoseconds: UInt64
    /// File length; always on a block boundary.
    public var bytes: UInt64
    /// Packets in the file; nil for a segment left by an earlier run that was not re-read at start-up.
    public var packetCount: UInt64?
    /// True for the segment still being written (it only ever grows, by whole blocks).
    public var isOpen: Bool
}

/// The list of segments, oldest first, replaced by the capture thread and readable from any thread.
public final class SegmentCatalog: Sendable {
    private let state = Mutex<[SegmentInfo]>([])

    init() {}

    /// Closed segments oldest first, then the open one if any.
    public func segments() -> [SegmentInfo] { state.withLock { $0 } }

    func replace(with segments: [SegmentInfo]) { state.withLock { $0 = segments } }
}
