/// An IPv4 or IPv6 address held in two words: hashing and comparing it never allocates.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The high 64 bits of an IPv6 address; 0 for IPv4.
    public var high: UInt64
    /// The low 64 bits of an IPv6 address, or the IPv4 address in the low 32 bits.
    public var low: UInt64
    public var isIPv6: Bool

    /// An IPv4 address from its 32-bit value.
    public init(ipv4: UInt32) {
        high = 0
        low = UInt64(ipv4)
        isIPv6 = false
    }

    /// An IPv6 address from its two halves.
    public init(ipv6High: UInt64, low: UInt64) {
        high = ipv6High
        self.low = low
        isIPv6 = true
    }

    /// Reads 4 (IPv4) or 16 (IPv6) bytes at `offset`; nil when they are not all there.
    init?(_ bytes: UnsafeRawBufferPointer, at offset: Int, ipv6: Bool) {
        if ipv6 {
            guard let a = bytes.u32(offset), let b = bytes.u32(offset + 4), let c = bytes.u32(offset + 8),
                let d = bytes.u32(offset + 12)
            else { return nil }
            self.init(ipv6High: UInt64(a) << 32 | UInt64(b), low: UInt64(c) << 32 | UInt64(d))
        } else {
            guard let a = bytes.u32(offset) else { return nil }
            self.init(ipv4: a)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.isIPv6 != rhs.isIPv6 { return !lhs.isIPv6 }
        return lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low < rhs.low
    }

    /// Dotted quad, or the RFC 5952 text form for IPv6.
    public var description: String {
        if !isIPv6 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
            groups[i + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
        }
        if high == 0, low >> 32 == 0xffff {
            let v = UInt32(truncatingIfNeeded: low)
            return "::ffff:\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        }
        // The longest run of two or more zero groups is written "::" (the first one on a tie).
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8, groups[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        var text = ""
        index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }
}
