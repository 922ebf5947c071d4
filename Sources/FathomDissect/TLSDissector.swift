import FathomModel

/// TLS handshakes of traffic that is not decrypted: one call per handshake with version, SNI, ALPN, cipher and the
/// JA3/JA4 fingerprints of the ClientHello. The encrypted records that follow are skipped.
final class TLSDissector: StreamDissector {
    static let maxHandshakeBytes = 64 * 1024

    private var handshake = [[UInt8](), [UInt8]()]
    private var clientHello: TLSHello?
    private var serverHello: TLSHello?
    private var startNanoseconds: UInt64 = 0
    private var emitted = false
    private var gap = false
    /// A direction stops being parsed once its hello is read, after a gap, or when records stop making sense.
    private var done = [false, false]
    private var clientHelloSize = 0
    private var serverHelloSize = 0

    static func probe(_ bytes: UnsafeRawBufferPointer) -> ProbeResult {
        guard let type = bytes.u8(0) else { return .needMoreData }
        guard type == 22 else { return .noMatch }
        guard let major = bytes.u8(1), let minor = bytes.u8(2) else { return .needMoreData }
        guard major == 3, minor <= 4 else { return .noMatch }
        guard let handshakeType = bytes.u8(5) else { return .needMoreData }
        switch handshakeType {
        case 1: return .senderIsClient
        case 2: return .senderIsServer
        default: return .noMatch
        }
    }

    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int {
        let s = side.rawValue
        if done[s] { return bytes.count }
        var offset = 0
        while let type = bytes.u8(offset), let length = bytes.u16(offset + 3) {
            guard let fragment = bytes.slice(offset + 5, Int(length)) else { break }
            if side == .client, clientHello == nil, offset == 0, handshake[s].isEmpty {
                startNanoseconds = session.firstByteNanoseconds
            }
            offset += 5 + Int(length)
            guard type == 22 else {
                // ChangeCipherSpec, alert or application data: the handshake in clear is over for this side.
                finishSide(side, session)
                return bytes.count
            }
            handshake[s].append(contentsOf: fragment)
            if side == .client { clientHelloSize += 5 + Int(length) } else { serverHelloSize += 5 + Int(length) }
            if readHello(side, session) || handshake[s].count > TLSDissector.maxHandshakeBytes {
                finishSide(side, session)
                return bytes.count
            }
        }
        return offset
    }

    /// Reads the hello once the first handshake message is complete; true when this side is done.
    private func readHello(_ side: StreamSide, _ session: ConnectionSession) -> Bool {
        let s = side.rawValue
        return handshake[s].withUnsafeBytes { raw -> Bool in
            guard let type = raw.u8(0), let length = raw.u24(1) else { return false }
            guard let body = raw.slice(4, Int(length)) else { return false }
            if side == .client, type == 1 {
                clientHello = TLSHello.parseClientHello(body)
            } else if side == .server, type == 2 {
                serverHello = TLSHello.parseServerHello(body)
                emitCall(session)
            }
            return true
        }
    }

    private func finishSide(_ side: StreamSide, _ session: ConnectionSession) {
        done[side.rawValue] = true
        handshake[side.rawValue] = []
        if done[0], done[1] { emitCall(session) }
    }

    private func emitCall(_ session: ConnectionSession) {
        guard !emitted, clientHello != nil || serverHello != nil else { return }
        emitted = true
        var call = session.makeCall(
            proto: "tls", startNanoseconds: clientHello != nil ? startNanoseconds : session.nowNanoseconds)
        let client = clientHello
        let negotiated = serverHello.map { $0.supportedVersions.first ?? $0.legacyVersion }
        var info = TLSInfo(version: TLSHello.versionName(negotiated ?? client?.offeredVersion ?? 0))
        if let client {
            info.sni = client.sni
            info.alpn = client.alpn
            info.ja3 = client.ja3.hash
            info.ja4 = client.ja4
            call.path = client.sni
        } else {
            call.flags.noRequest = true
        }
        if let server = serverHello {
            info.cipher = TLSCipherNames.name(server.ciphers.first ?? 0)
            if let selected = server.alpn.first { info.alpn = [selected] }
            if client != nil { call.latencyMs = milliseconds(from: startNanoseconds, to: session.nowNanoseconds) }
        } else {
            call.flags.noResponse = true
        }
        call.method = "handshake"
        call.requestSize = clientHelloSize
        call.responseSize = serverHelloSize
        call.flags.gap = gap
        call.tls = info
        session.emit(call)
    }

    func gap(from side: StreamSide, length: Int, session: ConnectionSession) {
        if !emitted { gap = true }
        finishSide(side, session)
    }

    func finish(session: ConnectionSession) {
        emitCall(session)
    }
}

extension DissectorRegistration {
    /// TLS handshakes (ClientHello/ServerHello in clear).
    public static let tls = DissectorRegistration(
        name: "tls", portHints: [443, 8443, 993, 995, 465, 636, 853], probe: TLSDissector.probe,
        make: { _ in TLSDissector() })
}
