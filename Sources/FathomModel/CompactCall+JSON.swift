/// JSON Lines output of compact calls without Foundation's encoder, which costs more per call than dissecting it.
/// Keys are sorted, as `JSONEncoder` with `.sortedKeys` writes them, so both outputs are byte for byte the same.
extension CompactCall {
    public func appendJSON(to out: inout [UInt8]) {
        writeCompactJSON(
            to: &out, id: id, ts: ts, proto: proto, method: method, path: path, status: status,
            latencyMs: latency_ms, flags: flags
        ) { out, isSource in
            if isSource { src.appendJSON(to: &out) } else { dst.appendJSON(to: &out) }
        }
    }
}

extension Call {
    /// Appends the JSON of `compact` without building it (no copy of the call's strings): `fathom dissect`'s output.
    public func appendCompactJSON(to out: inout [UInt8]) {
        writeCompactJSON(
            to: &out, id: id, ts: ts, proto: proto, method: method, path: path, status: status,
            latencyMs: compactLatency, flags: flags.marks
        ) { out, isSource in
            if isSource { src.appendCompactJSON(to: &out) } else { dst.appendCompactJSON(to: &out) }
        }
    }
}

extension CompactCall.End {
    func appendJSON(to out: inout [UInt8]) {
        appendEndJSON(to: &out, ip: ip, port: port, name: name, pod: pod, ns: ns, svc: svc)
    }
}

extension Endpoint {
    /// The JSON of `compact`.
    func appendCompactJSON(to out: inout [UInt8]) {
        appendEndJSON(to: &out, ip: ip, port: port, name: name, pod: pod, ns: namespace, svc: service)
    }
}

/// The one writer of the compact shape, for `CompactCall` and `Call` alike; `appendEnd` writes `src` (true) or `dst`.
private func writeCompactJSON(
    to out: inout [UInt8], id: String, ts: Int64, proto: String, method: String, path: String, status: Int,
    latencyMs: Double, flags: [String]?, appendEnd: (inout [UInt8], Bool) -> Void
) {
    appendLiteral(#"{"dst":"#, to: &out)
    appendEnd(&out, false)
    if let flags {
        appendLiteral(#","flags":["#, to: &out)
        for (i, flag) in flags.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendString(flag, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }
    appendLiteral(#","id":"#, to: &out)
    appendString(id, to: &out)
    appendLiteral(#","latency_ms":"#, to: &out)
    appendNumber(latencyMs, to: &out)
    appendLiteral(#","method":"#, to: &out)
    appendString(method, to: &out)
    appendLiteral(#","path":"#, to: &out)
    appendString(path, to: &out)
    appendLiteral(#","proto":"#, to: &out)
    appendString(proto, to: &out)
    appendLiteral(#","src":"#, to: &out)
    appendEnd(&out, true)
    appendLiteral(#","status":"#, to: &out)
    appendInteger(Int64(status), to: &out)
    appendLiteral(#","ts":"#, to: &out)
    appendInteger(ts, to: &out)
    out.append(UInt8(ascii: "}"))
}

private func appendEndJSON(
    to out: inout [UInt8], ip: String, port: Int, name: String, pod: String?, ns: String?, svc: String?
) {
    appendLiteral(#"{"ip":"#, to: &out)
    appendString(ip, to: &out)
    appendLiteral(#","name":"#, to: &out)
    appendString(name, to: &out)
    if let ns {
        appendLiteral(#","ns":"#, to: &out)
        appendString(ns, to: &out)
    }
    if let pod {
        appendLiteral(#","pod":"#, to: &out)
        appendString(pod, to: &out)
    }
    appendLiteral(#","port":"#, to: &out)
    appendInteger(Int64(port), to: &out)
    if let svc {
        appendLiteral(#","svc":"#, to: &out)
        appendString(svc, to: &out)
    }
    out.append(UInt8(ascii: "}"))
}

private let hexDigits = Array("0123456789abcdef".utf8)

/// A key or punctuation: one copy from the literal (appending a `String.UTF8View` goes byte by byte).
@inline(__always)
private func appendLiteral(_ literal: StaticString, to out: inout [UInt8]) {
    out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

/// A JSON string: quotes, backslashes and control characters escaped; "/" left alone, as `.withoutEscapingSlashes`.
private func appendString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    // Most strings need no escape: one scan, then one bulk copy instead of an append per byte.
    let copied = s.utf8.withContiguousStorageIfAvailable { bytes in
        guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            return false
        }
        out.append(contentsOf: bytes)
        return true
    }
    if copied == true {
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

/// Decimal digits written in place (`String(value)` allocates nothing for these but costs more per digit).
private func appendInteger(_ value: Int64, to out: inout [UInt8]) {
    if value < 0 { out.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var start = 20
        repeat {
            start -= 1
            digits[start] = UInt8(truncatingIfNeeded: 48 + magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
    }
}

/// A number as `JSONEncoder` writes it: integral values without a fraction, others as Swift's shortest form. Values
/// with at most three decimals (latencies are rounded so) are written from their digits directly: below 1e9 the
/// shortest form of the double nearest to k/1000 is k/1000's decimal digits.
private func appendNumber(_ value: Double, to out: inout [UInt8]) {
    if value == value.rounded(), abs(value) < 1e15 {
        appendInteger(Int64(value), to: &out)
        return
    }
    let thousandths = (value * 1000).rounded()
    guard value > 0, value < 1e9, thousandths / 1000 == value else {
        out.append(contentsOf: String(value).utf8)
        return
    }
    let k = Int64(thousandths)
    appendInteger(k / 1000, to: &out)
    var fraction = k % 1000  // not 0: the value is not integral
    var digits = 3
    while fraction % 10 == 0 {
        fraction /= 10
        digits -= 1
    }
    out.append(UInt8(ascii: "."))
    if digits == 3, fraction < 100 { out.append(UInt8(ascii: "0")) }
    if digits >= 2, fraction < 10 { out.append(UInt8(ascii: "0")) }
    appendInteger(fraction, to: &out)
}
