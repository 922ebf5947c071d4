import FathomModel

/// HPACK (RFC 7541) header block decoding with the dynamic table. One per direction of a connection.
struct HPACKDecoder {
    enum Failure: Error {
        case truncated
        case badIndex
        case badString
        case tableSizeTooLarge
    }

    /// The largest dynamic table a size update may ask for (the peer's SETTINGS are not enforced).
    static let maxTableSizeLimit = 1 << 20

    private var entries: [Header] = []  // oldest first; index 62 is the newest
    private var size = 0
    private(set) var maxSize = 4096

    static let staticTable: [Header] = [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
        ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
        ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
        ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
        ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
        ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
        ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ].map { Header(name: $0.0, value: $0.1) }

    /// Decodes one complete header block.
    mutating func decode(_ block: UnsafeRawBufferPointer) throws(Failure) -> [Header] {
        var headers: [Header] = []
        headers.reserveCapacity(16)  // one allocation for a typical block instead of five as it grows
        var offset = 0
        while offset < block.count {
            let first = block[offset]
            if first & 0x80 != 0 {
                let index = try integer(block, &offset, prefixBits: 7)
                headers.append(try entry(index))
            } else if first & 0x40 != 0 {
                let header = try literal(block, &offset, prefixBits: 6)
                headers.append(header)
                insert(header)
            } else if first & 0x20 != 0 {
                let newSize = try integer(block, &offset, prefixBits: 5)
                guard newSize <= HPACKDecoder.maxTableSizeLimit else { throw .tableSizeTooLarge }
                maxSize = newSize
                evict(toFit: 0)
            } else {
                headers.append(try literal(block, &offset, prefixBits: 4))
            }
        }
        return headers
    }

    private func entry(_ index: Int) throws(Failure) -> Header {
        if index >= 1, index <= HPACKDecoder.staticTable.count { return HPACKDecoder.staticTable[index - 1] }
        let dynamicIndex = index - HPACKDecoder.staticTable.count - 1
        guard dynamicIndex >= 0, dynamicIndex < entries.count else { throw .badIndex }
        return entries[entries.count - 1 - dynamicIndex]
    }

    private func literal(_ block: UnsafeRawBufferPointer, _ offset: inout Int, prefixBits: Int) throws(Failure) -> Header {
        let index = try integer(block, &offset, prefixBits: prefixBits)
        let name = index == 0 ? try string(block, &offset) : try entry(index).name
        return Header(name: name, value: try string(block, &offset))
    }

    private mutating func insert(_ header: Header) {
        let entrySize = header.name.utf8.count + header.value.utf8.count + 32
        evict(toFit: entrySize)
        if entrySize <= maxSize {
            entries.append(header)
            size += entrySize
        }
    }

    private mutating func evict(toFit incoming: Int) {
        var drop = 0
        while size + incoming > maxSize, drop < entries.count {
            size -= entries[drop].name.utf8.count + entries[drop].value.utf8.count + 32
            drop += 1
        }
        if drop > 0 { entries.removeFirst(drop) }
    }

    /// An HPACK integer with an N-bit prefix; bounded to 2^28.
    private func integer(_ block: UnsafeRawBufferPointer, _ offset: inout Int, prefixBits: Int) throws(Failure) -> Int {
        guard offset < block.count else { throw .truncated }
        let mask = (1 << prefixBits) - 1
        var value = Int(block[offset]) & mask
        offset += 1
        guard value == mask else { return value }
        var shift = 0
        while true {
            guard offset < block.count, shift <= 21 else { throw .truncated }
            let byte = block[offset]
            offset += 1
            value += Int(byte & 0x7f) << shift
            shift += 7
            if byte & 0x80 == 0 { return value }
        }
    }

    private func string(_ block: UnsafeRawBufferPointer, _ offset: inout Int) throws(Failure) -> String {
        guard offset < block.count else { throw .truncated }
        let huffman = block[offset] & 0x80 != 0
        let length = try integer(block, &offset, prefixBits: 7)
        guard let bytes = block.slice(offset, length) else { throw .truncated }
        offset += length
        if huffman {
            guard let decoded = HPACKHuffman.decode(bytes) else { throw .badString }
            return String(decoding: decoded, as: UTF8.self)
        }
        return String(wire: bytes)
    }
}
