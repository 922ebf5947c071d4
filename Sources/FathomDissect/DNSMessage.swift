import FathomModel

/// A parsed DNS message: header, questions and the answer section.
struct DNSMessage {
    var id: UInt16
    var isResponse: Bool
    var opcode: Int
    var rcode: Int
    var questions: [DNSInfo.Question]
    var answers: [DNSInfo.Answer]
    /// The message length on the wire.
    var size: Int

    /// Parses a whole DNS message; nil when it is not one (lengths or names out of bounds, nonsense counts).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> DNSMessage? {
        guard let id = bytes.u16(0), let flags = bytes.u16(2), let questionCount = bytes.u16(4),
            let answerCount = bytes.u16(6), let authorityCount = bytes.u16(8), let additionalCount = bytes.u16(10)
        else { return nil }
        let opcode = Int(flags >> 11) & 0x0f
        // Each question takes at least 5 bytes and each record 11: counts beyond that are not DNS.
        guard opcode <= 6, flags & 0x0040 == 0, Int(questionCount) * 5 + Int(answerCount) * 11 <= bytes.count,
            Int(authorityCount) + Int(additionalCount) <= bytes.count / 11
        else { return nil }
        var message = DNSMessage(
            id: id, isResponse: flags & 0x8000 != 0, opcode: opcode, rcode: Int(flags & 0x000f), questions: [],
            answers: [], size: bytes.count)
        var offset = 12
        for _ in 0..<questionCount {
            guard let (name, next) = readName(bytes, at: offset), let type = bytes.u16(next), bytes.u16(next + 2) != nil
            else { return nil }
            message.questions.append(DNSInfo.Question(name: name, type: typeName(type)))
            offset = next + 4
        }
        for _ in 0..<answerCount {
            guard let (name, next) = readName(bytes, at: offset), let type = bytes.u16(next), let ttl = bytes.u32(next + 4),
                let length = bytes.u16(next + 8), let data = bytes.slice(next + 10, Int(length))
            else { return nil }
            message.answers.append(
                DNSInfo.Answer(
                    name: name, type: typeName(type), data: recordData(type, data, message: bytes, at: next + 10),
                    ttl: ttl))
            offset = next + 10 + Int(length)
        }
        return message
    }

    /// Reads a possibly compressed name at `offset`; returns it and the offset after it in the message.
    static func readName(_ bytes: UnsafeRawBufferPointer, at start: Int) -> (String, Int)? {
        var labels: [UInt8] = []
        var offset = start
        var end: Int?
        var jumps = 0
        while true {
            guard let length = bytes.u8(offset) else { return nil }
            if length & 0xc0 == 0xc0 {
                guard let low = bytes.u8(offset + 1), jumps < 64 else { return nil }
                if end == nil { end = offset + 2 }
                let target = Int(length & 0x3f) << 8 | Int(low)
                // Pointers go backwards; anything else could loop.
                guard target < offset else { return nil }
                offset = target
                jumps += 1
                continue
            }
            guard length & 0xc0 == 0 else { return nil }
            if length == 0 {
                if end == nil { end = offset + 1 }
                break
            }
            guard let label = bytes.slice(offset + 1, Int(length)), labels.count + Int(length) < 256 else { return nil }
            if !labels.isEmpty { labels.append(UInt8(ascii: ".")) }
            labels.append(contentsOf: label)
            offset += 1 + Int(length)
        }
        guard let end else { return nil }
        return (labels.isEmpty ? "<Root>" : String(decoding: labels, as: UTF8.self), end)
    }

    /// The text form of a record's data, as `dig` would show it.
    static func recordData(_ type: UInt16, _ data: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, at offset: Int) -> String {
        switch type {
        case 1 where data.count == 4:
            return IPAddress(data, at: 0, ipv6: false)?.description ?? ""
        case 28 where data.count == 16:
            return IPAddress(data, at: 0, ipv6: true)?.description ?? ""
        case 2, 5, 12:  // NS, CNAME, PTR
            return readName(message, at: offset)?.0 ?? ""
        case 15:  // MX
            guard let preference = data.u16(0), let (name, _) = readName(message, at: offset + 2) else { return "" }
            return "\(preference) \(name)"
        case 33:  // SRV
            guard let priority = data.u16(0), let weight = data.u16(2), let port = data.u16(4),
                let (target, _) = readName(message, at: offset + 6)
            else { return "" }
            return "\(priority) \(weight) \(port) \(target)"
        case 16:  // TXT: character strings
            var parts: [String] = []
            var cursor = 0
            while let length = data.u8(cursor), let text = data.slice(cursor + 1, Int(length)) {
                parts.append(String(wire: text))
                cursor += 1 + Int(length)
            }
            return parts.joined(separator: " ")
        case 6:  // SOA
            guard let (primary, next) = readName(message, at: offset), let (mailbox, after) = readName(message, at: next),
                let serial = message.u32(after)
            else { return "" }
            return "\(primary) \(mailbox) \(serial)"
        default:
            return hexString(data)
        }
    }

    static func typeName(_ type: UInt16) -> String {
        switch type {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 13: "HINFO"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 33: "SRV"
        case 35: "NAPTR"
        case 41: "OPT"
        case 43: "DS"
        case 46: "RRSIG"
        case 47: "NSEC"
        case 48: "DNSKEY"
        case 64: "SVCB"
        case 65: "HTTPS"
        case 252: "AXFR"
        case 255: "ANY"
        case 257: "CAA"
        default: "TYPE\(type)"
        }
    }

    static func rcodeName(_ rcode: Int) -> String {
        switch rcode {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 6: "YXDOMAIN"
        case 7: "YXRRSET"
        case 8: "NXRRSET"
        case 9: "NOTAUTH"
        case 10: "NOTZONE"
        default: "RCODE\(rcode)"
        }
    }
}

/// Builds the call of a DNS exchange; shared by DNS over UDP and over TCP.
enum DNSCall {
    static func make(
        query: DNSMessage?, queryNanoseconds: UInt64, response: DNSMessage?, responseNanoseconds: UInt64,
        session: ConnectionSession
    ) -> Call {
        let first = query ?? response
        let start = query != nil ? queryNanoseconds : responseNanoseconds
        var call = session.makeCall(proto: "dns", startNanoseconds: start)
        let question = first?.questions.first
        call.method = question?.type ?? ""
        call.path = question?.name ?? ""
        call.requestSize = query?.size ?? 0
        call.responseSize = response?.size ?? 0
        if let response {
            call.status = response.rcode
            if query != nil { call.latencyMs = milliseconds(from: queryNanoseconds, to: responseNanoseconds) }
            for answer in response.answers where answer.type == "A" || answer.type == "AAAA" {
                session.learned(name: question?.name ?? answer.name, for: answer.data)
            }
        }
        call.flags.noResponse = response == nil
        call.flags.noRequest = query == nil
        call.dns = DNSInfo(
            transactionID: first?.id ?? 0, questions: first?.questions ?? [], answers: response?.answers ?? [],
            rcode: response.map { DNSMessage.rcodeName($0.rcode) } ?? "")
        return call
    }
}
