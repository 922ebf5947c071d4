private let base64Alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/// Standard base64 with padding, for binary body previews. Written straight into the string's storage: gRPC
/// payloads are encoded on every call.
func base64Encoded(_ bytes: UnsafeRawBufferPointer) -> String {
    guard !bytes.isEmpty else { return "" }
    let length = (bytes.count + 2) / 3 * 4
    return String(unsafeUninitializedCapacity: length) { out in
        let alphabet = base64Alphabet.utf8Start
        var index = 0
        var written = 0
        while index + 3 <= bytes.count {
            let v = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out[written] = alphabet[Int(v >> 18 & 63)]
            out[written + 1] = alphabet[Int(v >> 12 & 63)]
            out[written + 2] = alphabet[Int(v >> 6 & 63)]
            out[written + 3] = alphabet[Int(v & 63)]
            index += 3
            written += 4
        }
        let rest = bytes.count - index
        if rest > 0 {
            let v = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out[written] = alphabet[Int(v >> 18 & 63)]
            out[written + 1] = alphabet[Int(v >> 12 & 63)]
            out[written + 2] = rest == 2 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "=")
            out[written + 3] = UInt8(ascii: "=")
            written += 4
        }
        return written
    }
}
