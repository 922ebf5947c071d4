/// Why a `SegmentStore` could not start.
public struct RecordingError: Error, Sendable, CustomStringConvertible {
    /// Which start-up step failed.
    public enum Kind: Sendable, Equatable {
        /// The directory (or a parent) could not be created.
        case cannotCreateDirectory
        /// A file cannot be created in the segments directory (read-only filesystem, permissions…).
        case directoryNotWritable
        /// The segments directory cannot be listed.
        case cannotListDirectory
        /// A torn segment could not be truncated or removed.
        case repairFailed
    }

    /// Which start-up step failed.
    public var kind: Kind
    /// The directory or file concerned.
    public var path: String
    /// errno of the failed call.
    public var errno: Int32

    public var description: String {
        let what = switch kind {
        case .cannotCreateDirectory: "cannot create recording directory"
        case .directoryNotWritable: "recording directory is not writable"
        case .cannotListDirectory: "cannot list recording directory"
        case .repairFailed: "cannot repair torn segment"
        }
        return "\(what) \(path): \(POSIX.describe(errno: errno))"
    }
}
