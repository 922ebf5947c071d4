import FathomModel

/// Collects the first bytes of a body as they stream by, up to a cap, and counts all of them.
struct BodyCollector {
    private(set) var bytes: [UInt8] = []
    /// Body bytes on the wire (after de-chunking), including those past the cap or lost in gaps.
    private(set) var wireSize = 0
    /// The collected bytes stop before the body's end (cap reached or a gap).
    private(set) var cut = false
    let cap: Int

    init(cap: Int) {
        self.cap = cap
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        wireSize += chunk.count
        guard !cut else { return }
        let room = cap - bytes.count
        if chunk.count <= room {
            bytes.append(contentsOf: chunk)
        } else {
            bytes.append(contentsOf: chunk.prefix(room))
            cut = true
        }
    }

    /// Bytes lost to a gap: counted, and the preview stops there.
    mutating func skip(_ count: Int) {
        wireSize += count
        cut = true
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        wireSize = 0
        cut = false
    }
}

/// Turns a collected body into the preview a call carries: decompressed when encoded, UTF-8 text when it decodes,
/// else base64.
enum BodyPreview {
    static func message(
        headers: [Header], trailers: [Header] = [], body: BodyCollector, contentEncoding: String, cap: Int
    ) -> Message {
        var decoded: [UInt8] = body.bytes
        var truncated = body.cut
        if !body.bytes.isEmpty {
            let encoding = contentEncoding
            let inflated: Inflate.Output? = body.bytes.withUnsafeBytes { raw in
                if encoding.equalsIgnoringASCIICase("gzip") || encoding.equalsIgnoringASCIICase("x-gzip") {
                    Inflate.gunzip(raw, limit: cap)
                } else if encoding.equalsIgnoringASCIICase("deflate") {
                    Inflate.zlibOrRaw(raw, limit: cap)
                } else {
                    nil
                }
            }
            if let inflated {
                decoded = inflated.bytes
                truncated = truncated || inflated.cut || !inflated.complete
            }
        }
        var message = Message(headers: headers, trailers: trailers, bodySize: body.wireSize, bodyTruncated: truncated)
        setBody(&message, decoded, cut: truncated)
        return message
    }

    /// A message whose body preview is the collected bytes in base64 whatever they are (gRPC payloads).
    static func base64Message(headers: [Header], trailers: [Header], body: BodyCollector) -> Message {
        Message(
            headers: headers, trailers: trailers, bodySize: body.wireSize,
            body: body.bytes.withUnsafeBytes { base64Encoded($0) }, bodyEncoding: "base64", bodyTruncated: body.cut)
    }

    /// Fills `body`/`bodyEncoding`: text when the bytes are UTF-8 (a character split by the cut is dropped).
    static func setBody(_ message: inout Message, _ bytes: [UInt8], cut: Bool) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var text = raw
            if cut {
                // Up to three trailing bytes may be an incomplete sequence.
                var end = raw.count
                var back = 0
                while back < 3, end > 0, raw[end - 1] & 0xc0 == 0x80 { end -= 1; back += 1 }
                if end > 0, raw[end - 1] >= 0xc0 { end -= 1 }
                text = UnsafeRawBufferPointer(rebasing: raw[0..<end])
            }
            if let string = String(validating: text.bindMemory(to: UInt8.self), as: UTF8.self) {
                message.body = string
                message.bodyEncoding = "utf8"
            } else {
                message.body = base64Encoded(raw)
                message.bodyEncoding = "base64"
            }
        }
    }
}
