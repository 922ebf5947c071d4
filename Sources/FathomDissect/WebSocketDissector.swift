import FathomModel

/// WebSocket after an HTTP/1.1 upgrade: one call per message (text, binary, close) with its unmasked preview.
final class WebSocketDissector: StreamDissector {
    private struct SideState {
        /// Opcode of the message being assembled from fragments, 0 when none.
        var opcode: UInt8 = 0
        var payload: BodyCollector
        var startNanoseconds: UInt64 = 0
        var lost = false
    }

    private let path: String
    private let cap: Int
    private var sides: [SideState]

    init(path: String, configuration: DissectionConfiguration) {
        self.path = path
        cap = configuration.bodyPreviewLimit
        sides = [SideState(payload: BodyCollector(cap: cap)), SideState(payload: BodyCollector(cap: cap))]
    }

    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int {
        let s = side.rawValue
        if sides[s].lost {
            session.countUnparsable(bytes.count, protocolName: "websocket")
            return bytes.count
        }
        var offset = 0
        while let first = bytes.u8(offset), let second = bytes.u8(offset + 1) {
            var length = Int(second & 0x7f)
            var cursor = offset + 2
            if length == 126 {
                guard let extended = bytes.u16(cursor) else { break }
                length = Int(extended)
                cursor += 2
            } else if length == 127 {
                guard let high = bytes.u32(cursor), let low = bytes.u32(cursor + 4) else { break }
                guard high < 0x8000 else {
                    sides[s].lost = true
                    return offset
                }
                length = Int(high) << 32 | Int(low)
                cursor += 8
            }
            var mask: (UInt8, UInt8, UInt8, UInt8)?
            if second & 0x80 != 0 {
                guard let m = bytes.slice(cursor, 4) else { break }
                mask = (m[0], m[1], m[2], m[3])
                cursor += 4
            }
            // Frames are parsed whole; one too big for the buffer bound arrives as a gap and stops this side.
            guard let payload = bytes.slice(cursor, length) else { break }
            let opcode = first & 0x0f
            let fin = first & 0x80 != 0
            if opcode != 0 || sides[s].opcode == 0 {
                sides[s].opcode = opcode
                sides[s].payload.reset()
                sides[s].startNanoseconds = offset == 0 ? session.firstByteNanoseconds : session.nowNanoseconds
            }
            if let mask {
                let keys = [mask.0, mask.1, mask.2, mask.3]
                var unmasked = [UInt8](repeating: 0, count: min(payload.count, cap))
                for i in 0..<unmasked.count { unmasked[i] = payload[i] ^ keys[i & 3] }
                unmasked.withUnsafeBytes { sides[s].payload.append($0) }
                if payload.count > unmasked.count { sides[s].payload.skip(payload.count - unmasked.count) }
            } else {
                sides[s].payload.append(payload)
            }
            offset = cursor + length
            if fin { emitMessage(side, session) }
        }
        return offset
    }

    private func emitMessage(_ side: StreamSide, _ session: ConnectionSession) {
        let s = side.rawValue
        let opcode = sides[s].opcode
        sides[s].opcode = 0
        let kind: String
        switch opcode {
        case 1: kind = "text"
        case 2: kind = "binary"
        case 8: kind = "close"
        default: return  // ping, pong and reserved opcodes are not calls
        }
        var call = session.makeCall(proto: "websocket", startNanoseconds: sides[s].startNanoseconds, from: side)
        call.method = kind
        call.path = path
        var message = Message(bodySize: sides[s].payload.wireSize, bodyTruncated: sides[s].payload.cut)
        if opcode == 8, let code = sides[s].payload.bytes.withUnsafeBytes({ $0.u16(0) }) { call.status = Int(code) }
        BodyPreview.setBody(&message, sides[s].payload.bytes, cut: sides[s].payload.cut)
        call.flags.truncated = message.bodyTruncated
        if side == .client {
            call.request = message
            call.requestSize = message.bodySize
        } else {
            call.response = message
            call.responseSize = message.bodySize
        }
        session.emit(call)
    }

    func gap(from side: StreamSide, length: Int, session: ConnectionSession) {
        sides[side.rawValue].lost = true
    }

    func finish(session: ConnectionSession) {}
}
