/// Sees the recording's bytes as they are written, so a reader can follow it from memory rather than from the file.
/// Called right after each write, on the capture thread or (direct I/O) the segment writes' thread, one call at a time
/// in file order: it must not block.
public protocol RecordingTap: AnyObject {
    /// `bytes` (valid only during the call; they may end inside a block that the next call completes) are now in
    /// segment `sequence` at `path`, starting at file offset `offset`. Offsets of one segment follow on from each
    /// other; segments come in sequence order.
    func recorded(_ bytes: UnsafeRawBufferPointer, segment sequence: UInt64, path: String, offset: UInt64)
}
