/// Names of snapshots and of their dissections: each becomes one directory name under the data directory, so only
/// a safe, portable subset is accepted (letters, digits, `.`, `_`, `-`; 1-64 bytes; not starting with `.` or `-`).
public enum SnapshotName {
    /// Longest accepted name, in bytes.
    public static let maximumLength = 64

    /// Nil when `name` is acceptable, else why not (fit for an API error).
    public static func problem(_ name: String, what: String = "snapshot name") -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "the \(what) is empty" }
        if bytes.count > maximumLength {
            return "the \(what) is \(bytes.count) bytes long; at most \(maximumLength) are allowed"
        }
        if bytes[0] == UInt8(ascii: ".") || bytes[0] == UInt8(ascii: "-") {
            return "the \(what) `\(name)` must not start with `.` or `-`"
        }
        for byte in bytes where !isAllowed(byte) {
            let shown = byte >= 0x20 && byte < 0x7F ? "`\(Character(Unicode.Scalar(byte)))`" : "byte 0x\(String(byte, radix: 16))"
            return "the \(what) `\(name.prefix(80))` contains \(shown); use letters, digits, `.`, `_` and `-`"
        }
        return nil
    }

    @inline(__always)
    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
