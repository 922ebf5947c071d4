/// Builds pcap and pcapng files byte by byte in either byte order, for inputs the writer never produces.
struct FileBuilder {
    var bigEndian: Bool
    var bytes: [UInt8] = []

    func u16(_ value: UInt16) -> [UInt8] {
        let v = bigEndian ? value.bigEndian : value.littleEndian
        return withUnsafeBytes(of: v) { Array($0) }
    }

    func u32(_ value: UInt32) -> [UInt8] {
        let v = bigEndian ? value.bigEndian : value.littleEndian
        return withUnsafeBytes(of: v) { Array($0) }
    }

    func u64(_ value: UInt64) -> [UInt8] {
        let v = bigEndian ? value.bigEndian : value.littleEndian
        return withUnsafeBytes(of: v) { Array($0) }
    }

    static func padded(_ data: [UInt8]) -> [UInt8] { data + [UInt8](repeating: 0, count: (4 - data.count % 4) % 4) }

    func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        u16(code) + u16(UInt16(value.count)) + Self.padded(value)
    }

    var endOfOptions: [UInt8] { u32(0) }

    /// Appends a pcapng block: type, length, body padded to 4 bytes, length again.
    mutating func block(_ type: UInt32, _ body: [UInt8]) {
        let body = Self.padded(body)
        let length = UInt32(12 + body.count)
        bytes += u32(type) + u32(length) + body + u32(length)
    }

    mutating func sectionHeader(major: UInt16 = 1) {
        block(0x0A0D_0D0A, u32(0x1A2B_3C4D) + u16(major) + u16(0) + u64(.max))
    }

    mutating func interface(linkType: UInt16, snapLength: UInt32 = 0, options: [UInt8] = []) {
        block(1, u16(linkType) + u16(0) + u32(snapLength) + options + (options.isEmpty ? [] : endOfOptions))
    }

    mutating func enhancedPacket(interface: UInt32, timestamp: UInt64, data: [UInt8], originalLength: UInt32? = nil,
                                 options: [UInt8] = []) {
        block(6, u32(interface) + u32(UInt32(timestamp >> 32)) + u32(UInt32(truncatingIfNeeded: timestamp))
            + u32(UInt32(data.count)) + u32(originalLength ?? UInt32(data.count)) + Self.padded(data)
            + options + (options.isEmpty ? [] : endOfOptions))
    }

    /// Fathom's custom option as the writer encodes it, in this builder's byte order.
    func fathomOption(source: UInt8, interfaceIndex: UInt32, cgroupID: UInt64, socketCookie: UInt64,
                      version: UInt8 = 1, enterprise: UInt32 = 32473) -> [UInt8] {
        option(2989, u32(enterprise) + [version, source, 0, 0] + u32(interfaceIndex) + u64(cgroupID) + u64(socketCookie))
    }

    /// Classic pcap file header; `nanoseconds` selects the 0xA1B23C4D magic.
    mutating func pcapHeader(nanoseconds: Bool, linkType: UInt32, snapLength: UInt32 = 65535, major: UInt16 = 2) {
        bytes += u32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4) + u16(major) + u16(4) + u32(0) + u32(0)
            + u32(snapLength) + u32(linkType)
    }

    mutating func pcapRecord(seconds: UInt32, fraction: UInt32, data: [UInt8], originalLength: UInt32? = nil) {
        bytes += u32(seconds) + u32(fraction) + u32(UInt32(data.count)) + u32(originalLength ?? UInt32(data.count)) + data
    }
}
