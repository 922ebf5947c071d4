// Bounds-checked big-endian reads over untrusted bytes. Every read returns nil past the end instead of trapping.

extension UnsafeRawBufferPointer {
    /// The byte at `offset`, nil when out of range.
    @inline(__always)
    func u8(_ offset: Int) -> UInt8? {
        offset >= 0 && offset < count ? self[offset] : nil
    }

    /// Big-endian 16-bit value at `offset`, nil when out of range.
    @inline(__always)
    func u16(_ offset: Int) -> UInt16? {
        guard offset >= 0, offset <= count - 2 else { return nil }
        return UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    /// Big-endian 24-bit value at `offset`, nil when out of range.
    @inline(__always)
    func u24(_ offset: Int) -> UInt32? {
        guard offset >= 0, offset <= count - 3 else { return nil }
        return UInt32(self[offset]) << 16 | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2])
    }

    /// Big-endian 32-bit value at `offset`, nil when out of range.
    @inline(__always)
    func u32(_ offset: Int) -> UInt32? {
        guard offset >= 0, offset <= count - 4 else { return nil }
        return UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8
            | UInt32(self[offset + 3])
    }

    /// The bytes in `offset ..< offset + length`, nil when that range is not inside the buffer.
    @inline(__always)
    func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return UnsafeRawBufferPointer(rebasing: self[offset..<(offset + length)])
    }

    /// The bytes from `offset` to the end (empty when `offset` is past it).
    @inline(__always)
    func suffix(from offset: Int) -> UnsafeRawBufferPointer {
        let start = Swift.min(Swift.max(offset, 0), count)
        return UnsafeRawBufferPointer(rebasing: self[start...])
    }

    /// True when the buffer starts with `prefix` (ASCII, case-sensitive).
    func hasPrefix(_ prefix: StaticString) -> Bool {
        let length = prefix.utf8CodeUnitCount
        guard count >= length else { return false }
        for k in 0..<length where self[k] != prefix.utf8Start[k] { return false }
        return true
    }
}

extension String {
    /// Decodes bytes as UTF-8, replacing invalid sequences (for header values and names on the wire).
    @inline(__always)
    init(wire bytes: UnsafeRawBufferPointer) {
        self = String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    /// Whether the string is `lowercase` (an ASCII literal in lower case) ignoring ASCII case: `lowercased() ==`
    /// without its allocation, for names with no letter that Unicode case mapping turns into ASCII (such as the
    /// Kelvin sign into "k").
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard utf8.count == lowercase.utf8CodeUnitCount else { return false }
        var k = 0
        for byte in utf8 {
            let folded = byte >= 65 && byte <= 90 ? byte + 32 : byte
            if folded != lowercase.utf8Start[k] { return false }
            k += 1
        }
        return true
    }
}

/// Lowercase hexadecimal of bytes.
func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
