/// Sees the recording's bytes as they are written, so a reader can follow it from memory rather than from the file.
/// Called on the capture thread right after each write: it must not block.
public protocol RecordingTap: AnyObject {
    /// `bytes` (valid only during the call; they may end inside a block that the next call completes) are now in
    /// segment `sequence` at `path`, starting at file offset `offset`. Offsets of one segment follow on from each
    /// other; segments come in sequence order.
    func recorded(_ bytes: UnsafeRawBufferPointer, segment sequence: UInt64, path: String, offset: UInt64)
}
