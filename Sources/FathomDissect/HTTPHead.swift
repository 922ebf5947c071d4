import FathomModel

/// The start line and headers of an HTTP/1.x message, with the fields framing and calls need.
struct HTTPHead {
    var isRequest: Bool
    var method = ""
    var path = ""
    var query = ""
    var status = 0
    var statusText = ""
    var version = ""
    var headers: [Header] = []
    var contentLength: Int?
    var chunked = false
    var contentEncoding = ""
    var contentType = ""
    var host = ""
    var upgrade = ""
    /// Bytes of the start line and headers including the empty line.
    var size = 0

    static let methods: [StaticString] = [
        "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PROPFIND ",
        "PROPPATCH ", "MKCOL ", "COPY ", "MOVE ", "LOCK ", "UNLOCK ", "SEARCH ", "REPORT ", "PURGE ",
    ]

    /// Whether `bytes` begin like a request (a known method and a space) or a response ("HTTP/1.x ").
    static func looksLikeStart(_ bytes: UnsafeRawBufferPointer, request: Bool) -> Bool {
        request ? methods.contains { bytes.hasPrefix($0) } : bytes.hasPrefix("HTTP/1.")
    }

    /// Offset just past the "\r\n\r\n" ending the head that starts at `from`, nil when not there yet.
    static func endOfHead(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var index = from + 3
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 10 {
                if bytes[index - 1] == 13, bytes[index - 2] == 10, bytes[index - 3] == 13 { return index + 1 }
                index += 1
            } else if byte == 13 {
                index += 1
            } else {
                // Neither CR nor LF: the terminator cannot end before index + 4.
                index += 4
            }
        }
        return nil
    }

    /// Parses a head (`bytes` ends with the empty line); nil when the start line is malformed.
    static func parse(_ bytes: UnsafeRawBufferPointer, request: Bool) -> HTTPHead? {
        var head = HTTPHead(isRequest: request)
        head.size = bytes.count
        head.headers.reserveCapacity(16)
        var lineStart = 0
        var lineIndex = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != 10 { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart, bytes[contentEnd - 1] == 13 { contentEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<contentEnd])
            if lineIndex == 0 {
                guard request ? head.parseRequestLine(line) : head.parseStatusLine(line) else { return nil }
            } else if !line.isEmpty {
                head.addHeader(line)
            }
            lineStart = lineEnd + 1
            lineIndex += 1
        }
        return head
    }

    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let firstSpace = line.firstIndex(of: 32), firstSpace > 0, firstSpace <= 24,
            let lastSpace = line.lastIndex(of: 32), lastSpace > firstSpace
        else { return false }
        for k in 0..<firstSpace {
            let c = line[k]
            guard (c >= 65 && c <= 90) || c == 45 || c == 95 else { return false }
        }
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard versionBytes.hasPrefix("HTTP/") else { return false }
        method = String(wire: UnsafeRawBufferPointer(rebasing: line[0..<firstSpace]))
        version = String(wire: versionBytes)
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        if let question = target.firstIndex(of: 63) {
            path = String(wire: UnsafeRawBufferPointer(rebasing: target[0..<question]))
            query = String(wire: UnsafeRawBufferPointer(rebasing: target[(question + 1)...]))
        } else {
            path = String(wire: target)
        }
        return true
    }

    private mutating func parseStatusLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard line.hasPrefix("HTTP/1."), line.count >= 12, line[8] == 32 else { return false }
        var code = 0
        for k in 9..<12 {
            let c = line[k]
            guard c >= 48, c <= 57 else { return false }
            code = code * 10 + Int(c - 48)
        }
        status = code
        version = String(wire: UnsafeRawBufferPointer(rebasing: line[0..<8]))
        if line.count > 13 { statusText = String(wire: UnsafeRawBufferPointer(rebasing: line[13...])) }
        return true
    }

    mutating func addHeader(_ line: UnsafeRawBufferPointer) {
        guard let colon = line.firstIndex(of: 58) else { return }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd, line[valueStart] == 32 || line[valueStart] == 9 { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == 32 || line[valueEnd - 1] == 9 { valueEnd -= 1 }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
        let header = Header(name: String(wire: name), value: String(wire: value))
        headers.append(header)
        switch name.count {
        case 4 where asciiEqual(name, "host"): host = header.value
        case 7 where asciiEqual(name, "upgrade"): upgrade = header.value.lowercased()
        case 12 where asciiEqual(name, "content-type"): contentType = header.value
        case 14 where asciiEqual(name, "content-length"):
            var length = 0
            var digits = 0
            for c in value {
                guard c >= 48, c <= 57, length < Int.max / 10 - 10 else { return }
                length = length * 10 + Int(c - 48)
                digits += 1
            }
            if digits > 0 { contentLength = length }
        case 16 where asciiEqual(name, "content-encoding"): contentEncoding = header.value
        case 17 where asciiEqual(name, "transfer-encoding"):
            chunked = header.value.lowercased().contains("chunked")
        default: break
        }
    }
}

/// Compares ASCII bytes with a lowercase literal, ignoring case.
func asciiEqual(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    for k in 0..<bytes.count {
        var c = bytes[k]
        if c >= 65, c <= 90 { c += 32 }
        if c != lowercase.utf8Start[k] { return false }
    }
    return true
}
