/// Why a pcap or pcapng file could not be read, and where: `offset` is the byte offset in the file.
public struct PacketFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of problem a file can have.
    public enum Kind: Sendable, Equatable {
        /// open(2) or pread(2) failed with this errno.
        case io(errno: Int32)
        /// The file is shorter than the 4 bytes that say what it is.
        case truncatedFileHeader
        /// Neither a pcapng section header nor a classic pcap magic number.
        case badMagic(UInt32)
        /// A format version this reader does not know (pcapng major ≠ 1, pcap major ≠ 2).
        case unsupportedVersion(major: UInt16, minor: UInt16)
        /// A block or record length that is too small, not a multiple of 4, or larger than the reader accepts.
        case absurdBlockLength(UInt32)
        /// A pcapng block whose trailing length differs from its leading length.
        case blockLengthMismatch(leading: UInt32, trailing: UInt32)
        /// A block whose fields contradict its length (captured length or an option running past its end).
        case malformedBlock(String)
        /// A packet block naming an interface no IDB of the section declared.
        case unknownInterface(UInt32)
    }

    /// What is wrong.
    public var kind: Kind
    /// Byte offset in the file where the problem starts.
    public var offset: UInt64

    public init(_ kind: Kind, at offset: UInt64) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch kind {
        case .io(let code): what = "read failed: \(POSIX.describe(errno: code))"
        case .truncatedFileHeader: what = "file too short to be pcap or pcapng"
        case .badMagic(let magic): what = "not a pcap or pcapng file (magic 0x\(String(magic, radix: 16)))"
        case .unsupportedVersion(let major, let minor): what = "unsupported format version \(major).\(minor)"
        case .absurdBlockLength(let length): what = "absurd block length \(length)"
        case .blockLengthMismatch(let leading, let trailing):
            what = "block length \(leading) does not match trailing length \(trailing)"
        case .malformedBlock(let reason): what = "malformed block: \(reason)"
        case .unknownInterface(let id): what = "packet refers to undeclared interface \(id)"
        }
        return "\(what) at byte offset \(offset)"
    }
}

/// Bytes at the end of a file that do not form a complete block: what a crash in the middle of a write leaves.
public struct TornTail: Sendable, Equatable {
    /// Offset of the incomplete block, which is also the length of the file's complete part.
    public var offset: UInt64
    /// How many bytes of the incomplete block are present.
    public var byteCount: UInt64
}
