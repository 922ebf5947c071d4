/// JSON Lines output of compact calls without Foundation's encoder, which costs more per call than dissecting it.
/// Keys are sorted, as `JSONEncoder` with `.sortedKeys` writes them, so both outputs are byte for byte the same.
extension CompactCall {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"dst":"#.utf8)
        dst.appendJSON(to: &out)
        if let flags {
            out.append(contentsOf: #","flags":["#.utf8)
            for (i, flag) in flags.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(flag, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(contentsOf: #","id":"#.utf8)
        appendString(id, to: &out)
        out.append(contentsOf: #","latency_ms":"#.utf8)
        appendNumber(latency_ms, to: &out)
        out.append(contentsOf: #","method":"#.utf8)
        appendString(method, to: &out)
        out.append(contentsOf: #","path":"#.utf8)
        appendString(path, to: &out)
        out.append(contentsOf: #","proto":"#.utf8)
        appendString(proto, to: &out)
        out.append(contentsOf: #","src":"#.utf8)
        src.appendJSON(to: &out)
        out.append(contentsOf: #","status":"#.utf8)
        out.append(contentsOf: String(status).utf8)
        out.append(contentsOf: #","ts":"#.utf8)
        out.append(contentsOf: String(ts).utf8)
        out.append(UInt8(ascii: "}"))
    }
}

extension CompactCall.End {
    func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"ip":"#.utf8)
        appendString(ip, to: &out)
        out.append(contentsOf: #","name":"#.utf8)
        appendString(name, to: &out)
        if let ns {
            out.append(contentsOf: #","ns":"#.utf8)
            appendString(ns, to: &out)
        }
        if let pod {
            out.append(contentsOf: #","pod":"#.utf8)
            appendString(pod, to: &out)
        }
        out.append(contentsOf: #","port":"#.utf8)
        out.append(contentsOf: String(port).utf8)
        if let svc {
            out.append(contentsOf: #","svc":"#.utf8)
            appendString(svc, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

/// A JSON string: quotes, backslashes and control characters escaped; "/" left alone, as `.withoutEscapingSlashes`.
private func appendString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    // Most strings need no escape: one scan, then one bulk copy instead of an append per byte.
    let plain = s.utf8.withContiguousStorageIfAvailable { bytes in
        !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }
    if plain == true {
        out.append(contentsOf: s.utf8)
        out.append(UInt8(ascii: "\""))
        return
    }
    for byte in s.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        case 0..<0x20:
            out.append(contentsOf: Array(#"\u00"#.utf8))
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0xF)])
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}

private func appendNumber(_ value: Double, to out: inout [UInt8]) {
    if value == value.rounded(), abs(value) < 1e15 {
        out.append(contentsOf: String(Int64(value)).utf8)
    } else {
        out.append(contentsOf: String(value).utf8)
    }
}
