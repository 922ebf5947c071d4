internal import CFathomPcap

/// A BPF filter expression (tcpdump syntax) compiled by libpcap, matched against packets in memory. Packets of
/// several link types can be matched: the expression is compiled once per link type, when first needed.
/// Single-threaded.
public final class PacketFilter {
    /// The expression as given.
    public let expression: String
    private var compiled: [UInt16: OpaquePointer] = [:]

    /// Compiles `expression` for `linkType` now, so a syntax error is reported before any packet is read.
    public init(expression: String, checkingWith linkType: UInt16) throws(PacketFilterError) {
        self.expression = expression
        compiled[linkType] = try Self.compile(expression, linkType)
    }

    deinit { for filter in compiled.values { fathom_pcap_filter_free(filter) } }

    /// Whether the packet matches; a link type the expression cannot be compiled for matches nothing.
    public func matches(_ bytes: UnsafeRawBufferPointer, originalLength: UInt32, linkType: UInt16) -> Bool {
        let filter: OpaquePointer
        if let known = compiled[linkType] {
            filter = known
        } else {
            guard let made = try? Self.compile(expression, linkType) else { return false }
            compiled[linkType] = made
            filter = made
        }
        guard let base = bytes.baseAddress else { return false }
        return fathom_pcap_filter_matches(
            filter, base.assumingMemoryBound(to: UInt8.self), UInt32(bytes.count), originalLength) != 0
    }

    private static func compile(_ expression: String, _ linkType: UInt16) throws(PacketFilterError) -> OpaquePointer {
        var error = [CChar](repeating: 0, count: 512)
        guard let filter = fathom_pcap_filter_compile(expression, Int32(linkType), &error, error.count) else {
            throw PacketFilterError(description: "BPF filter `\(expression)`: " + String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return filter
    }
}

/// libpcap refused a filter expression; the description carries its message.
public struct PacketFilterError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
