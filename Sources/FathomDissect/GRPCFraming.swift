/// Counts gRPC length-prefixed messages (1 flag byte, 4 length bytes, payload) as DATA bytes stream by.
struct GRPCMessageCounter {
    private(set) var messages = 0
    private var prefix: [UInt8] = []
    private var remaining = 0

    mutating func consume(_ data: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < data.count {
            if remaining > 0 {
                let n = min(remaining, data.count - offset)
                remaining -= n
                offset += n
                continue
            }
            prefix.append(data[offset])
            offset += 1
            if prefix.count == 5 {
                let length = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
                messages += 1
                remaining = length
                prefix.removeAll(keepingCapacity: true)
            }
        }
    }
}

/// Percent-decoding of grpc-message (RFC 3986 style, as gRPC encodes it).
func percentDecoded(_ text: String) -> String {
    guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
    var out: [UInt8] = []
    let bytes = Array(text.utf8)
    var index = 0
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]),
            let low = hex(bytes[index + 2])
        {
            out.append(high << 4 | low)
            index += 3
        } else {
            out.append(bytes[index])
            index += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
