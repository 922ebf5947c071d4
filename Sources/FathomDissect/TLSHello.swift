/// The fields of a ClientHello or ServerHello that calls and fingerprints use.
struct TLSHello {
    var legacyVersion: UInt16 = 0
    var ciphers: [UInt16] = []
    var extensions: [UInt16] = []
    var supportedGroups: [UInt16] = []
    var pointFormats: [UInt8] = []
    var signatureAlgorithms: [UInt16] = []
    var supportedVersions: [UInt16] = []
    var alpn: [String] = []
    var sni = ""
    var hasSNI = false

    /// GREASE values (RFC 8701) are left out of fingerprints.
    static func isGREASE(_ value: UInt16) -> Bool {
        value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
    }

    /// Parses a ClientHello body (after the 4-byte handshake header); nil when malformed.
    static func parseClientHello(_ body: UnsafeRawBufferPointer) -> TLSHello? {
        var hello = TLSHello()
        guard let version = body.u16(0), let sessionLength = body.u8(34) else { return nil }
        hello.legacyVersion = version
        var offset = 35 + Int(sessionLength)
        guard let cipherLength = body.u16(offset), let ciphers = body.slice(offset + 2, Int(cipherLength)) else { return nil }
        for i in stride(from: 0, to: ciphers.count - 1, by: 2) { if let c = ciphers.u16(i) { hello.ciphers.append(c) } }
        offset += 2 + Int(cipherLength)
        guard let compressionLength = body.u8(offset) else { return nil }
        offset += 1 + Int(compressionLength)
        guard offset <= body.count else { return nil }
        if let extensionsLength = body.u16(offset), let extensions = body.slice(offset + 2, Int(extensionsLength)) {
            hello.parseExtensions(extensions, client: true)
        }
        return hello
    }

    /// Parses a ServerHello body; nil when malformed.
    static func parseServerHello(_ body: UnsafeRawBufferPointer) -> TLSHello? {
        var hello = TLSHello()
        guard let version = body.u16(0), let sessionLength = body.u8(34),
            let cipher = body.u16(35 + Int(sessionLength))
        else { return nil }
        hello.legacyVersion = version
        hello.ciphers = [cipher]
        let offset = 35 + Int(sessionLength) + 3
        if let extensionsLength = body.u16(offset), let extensions = body.slice(offset + 2, Int(extensionsLength)) {
            hello.parseExtensions(extensions, client: false)
        }
        return hello
    }

    private mutating func parseExtensions(_ bytes: UnsafeRawBufferPointer, client: Bool) {
        var offset = 0
        while let type = bytes.u16(offset), let length = bytes.u16(offset + 2), let data = bytes.slice(offset + 4, Int(length)) {
            extensions.append(type)
            offset += 4 + Int(length)
            switch type {
            case 0:  // server_name: list of (type, name)
                hasSNI = true
                if let nameLength = data.u16(3), let name = data.slice(5, Int(nameLength)) { sni = String(wire: name) }
            case 10:  // supported_groups
                if let listLength = data.u16(0) { supportedGroups = u16List(data.slice(2, Int(listLength))) }
            case 11:  // ec_point_formats
                if let listLength = data.u8(0), let list = data.slice(1, Int(listLength)) { pointFormats = Array(list) }
            case 13:  // signature_algorithms
                if let listLength = data.u16(0) { signatureAlgorithms = u16List(data.slice(2, Int(listLength))) }
            case 16:  // ALPN: list of length-prefixed protocol names
                var cursor = 2
                while let nameLength = data.u8(cursor), let name = data.slice(cursor + 1, Int(nameLength)) {
                    alpn.append(String(wire: name))
                    cursor += 1 + Int(nameLength)
                }
            case 43:  // supported_versions: a list in the ClientHello, one value in the ServerHello
                if client {
                    if let listLength = data.u8(0) { supportedVersions = u16List(data.slice(1, Int(listLength))) }
                } else if let selected = data.u16(0) {
                    supportedVersions = [selected]
                }
            default:
                break
            }
        }
    }

    private func u16List(_ bytes: UnsafeRawBufferPointer?) -> [UInt16] {
        guard let bytes else { return [] }
        return stride(from: 0, to: bytes.count - 1, by: 2).compactMap { bytes.u16($0) }
    }

    /// "TLS 1.3", "TLS 1.2", …
    static func versionName(_ version: UInt16) -> String {
        switch version {
        case 0x0304: "TLS 1.3"
        case 0x0303: "TLS 1.2"
        case 0x0302: "TLS 1.1"
        case 0x0301: "TLS 1.0"
        case 0x0300: "SSL 3.0"
        default: "0x" + String(version, radix: 16)
        }
    }

    /// The highest version offered (supported_versions without GREASE, else the legacy field).
    var offeredVersion: UInt16 {
        supportedVersions.filter { !TLSHello.isGREASE($0) }.max() ?? legacyVersion
    }

    /// JA3: the text and its MD5.
    var ja3: (text: String, hash: String) {
        func join<T: BinaryInteger>(_ values: [T]) -> String { values.map { String($0) }.joined(separator: "-") }
        let text = [
            String(legacyVersion), join(ciphers.filter { !TLSHello.isGREASE($0) }),
            join(extensions.filter { !TLSHello.isGREASE($0) }), join(supportedGroups.filter { !TLSHello.isGREASE($0) }),
            join(pointFormats),
        ].joined(separator: ",")
        return (text, md5Hex(Array(text.utf8)))
    }

    /// JA4 (FoxIO) over TCP: `t13d1516h2_<ciphers hash>_<extensions hash>`.
    var ja4: String {
        let version: String
        switch offeredVersion {
        case 0x0304: version = "13"
        case 0x0303: version = "12"
        case 0x0302: version = "11"
        case 0x0301: version = "10"
        case 0x0300: version = "s3"
        case 0x0002: version = "s2"
        default: version = "00"
        }
        let cipherList = ciphers.filter { !TLSHello.isGREASE($0) }
        let extensionList = extensions.filter { !TLSHello.isGREASE($0) }
        func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : String(min(n, 99)) }
        var alpnCode = "00"
        if let first = alpn.first, let head = first.utf8.first, let tail = first.utf8.last {
            func isAlphanumeric(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
            if isAlphanumeric(head), isAlphanumeric(tail) {
                alpnCode = String(decoding: [head, tail], as: UTF8.self)
            } else {
                let hex = hexString(Array(first.utf8))
                alpnCode = String(hex.prefix(1)) + String(hex.suffix(1))
            }
        }
        let a = "t" + version + (hasSNI ? "d" : "i") + twoDigits(cipherList.count) + twoDigits(extensionList.count) + alpnCode
        func hex4(_ v: UInt16) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 4 - s.count) + s
        }
        func truncatedHash(_ text: String) -> String { String(sha256Hex(Array(text.utf8)).prefix(12)) }
        let b = cipherList.isEmpty ? "000000000000" : truncatedHash(cipherList.sorted().map(hex4).joined(separator: ","))
        let sortedExtensions = extensionList.filter { $0 != 0 && $0 != 16 }.sorted().map(hex4).joined(separator: ",")
        var cText = sortedExtensions
        if !signatureAlgorithms.isEmpty { cText += "_" + signatureAlgorithms.map(hex4).joined(separator: ",") }
        let c = sortedExtensions.isEmpty ? "000000000000" : truncatedHash(cText)
        return a + "_" + b + "_" + c
    }
}
