/// JSON Lines output of compact calls without Foundation's encoder, which costs more per call than dissecting it.
/// Keys are sorted, as `JSONEncoder` with `.sortedKeys` writes them, so both outputs are byte for byte the same.
extension CompactCall {
    public func appendJSON(to out: inout [UInt8]) {
        JSONLine.write(to: &out) { line in
            writeCompactJSON(
                to: &line, id: id, ts: ts, proto: proto, method: method, path: path, status: status,
                latencyMs: latency_ms, flags: flags
            ) { line, isSource in
                if isSource { src.appendJSON(to: &line) } else { dst.appendJSON(to: &line) }
            }
        }
    }
}

extension Call {
    /// Appends the JSON of `compact` without building it (no copy of the call's strings): `fathom dissect`'s output.
    public func appendCompactJSON(to out: inout [UInt8]) {
        JSONLine.write(to: &out) { line in
            writeCompactJSON(
                to: &line, id: id, ts: ts, proto: proto, method: method, path: path, status: status,
                latencyMs: compactLatency, flags: flags.marks
            ) { line, isSource in
                if isSource { src.appendCompactJSON(to: &line) } else { dst.appendCompactJSON(to: &line) }
            }
        }
    }
}

extension CompactCall.End {
    func appendJSON(to out: inout JSONLine) {
        appendEndJSON(to: &out, ip: ip, port: port, name: name, pod: pod, ns: ns, svc: svc)
    }
}

extension Endpoint {
    /// The JSON of `compact`.
    func appendCompactJSON(to out: inout JSONLine) {
        appendEndJSON(to: &out, ip: ip, port: port, name: name, pod: pod, ns: namespace, svc: service)
    }
}

/// The one writer of the compact shape, for `CompactCall` and `Call` alike; `appendEnd` writes `src` (true) or `dst`.
private func writeCompactJSON(
    to out: inout JSONLine, id: String, ts: Int64, proto: String, method: String, path: String, status: Int,
    latencyMs: Double, flags: [String]?, appendEnd: (inout JSONLine, Bool) -> Void
) {
    appendLiteral(#"{"dst":"#, to: &out)
    appendEnd(&out, false)
    if let flags {
        appendLiteral(#","flags":["#, to: &out)
        for (i, flag) in flags.enumerated() {
            if i > 0 { out.write(UInt8(ascii: ",")) }
            appendString(flag, to: &out)
        }
        out.write(UInt8(ascii: "]"))
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
    out.write(UInt8(ascii: "}"))
}

private func appendEndJSON(
    to out: inout JSONLine, ip: String, port: Int, name: String, pod: String?, ns: String?, svc: String?
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
    out.write(UInt8(ascii: "}"))
}

/// One line being written: bytes gather in a stack buffer and reach the array in one append (an append per field
/// costs a uniqueness and a capacity check each).
struct JSONLine {
    private let scratch: UnsafeMutableBufferPointer<UInt8>
    private var count = 0
    private let out: UnsafeMutablePointer<[UInt8]>

    /// Runs `body` with a line that ends up appended to `out`.
    static func write(to out: inout [UInt8], _ body: (inout JSONLine) -> Void) {
        withUnsafeMutablePointer(to: &out) { out in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { scratch in
                var line = JSONLine(scratch: scratch, out: out)
                body(&line)
                line.flush()
            }
        }
    }

    private init(scratch: UnsafeMutableBufferPointer<UInt8>, out: UnsafeMutablePointer<[UInt8]>) {
        self.scratch = scratch
        self.out = out
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        if count == scratch.count { flush() }
        scratch[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        if bytes.count > scratch.count - count {
            flush()
            if bytes.count > scratch.count { return out.pointee.append(contentsOf: bytes) }
        }
        (scratch.baseAddress! + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func flush() {
        out.pointee.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<count]))
        count = 0
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

/// A key or punctuation: one copy from the literal (appending a `String.UTF8View` goes byte by byte).
@inline(__always)
private func appendLiteral(_ literal: StaticString, to out: inout JSONLine) {
    out.write(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

/// A JSON string: quotes, backslashes and control characters escaped; "/" left alone, as `.withoutEscapingSlashes`.
private func appendString(_ s: String, to out: inout JSONLine) {
    out.write(UInt8(ascii: "\""))
    // Most strings need no escape: one scan, then one bulk copy instead of an append per byte.
    let copied = s.utf8.withContiguousStorageIfAvailable { bytes in
        guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            return false
        }
        out.write(bytes)
        return true
    }
    if copied == true {
        out.write(UInt8(ascii: "\""))
        return
    }
    for byte in s.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "\\"))
        case UInt8(ascii: "\n"): out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "t"))
        case 0x08: out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "b"))
        case 0x0C: out.write(UInt8(ascii: "\\")); out.write(UInt8(ascii: "f"))
        case 0..<0x20:
            appendLiteral(#"\u00"#, to: &out)
            out.write(hexDigits[Int(byte >> 4)])
            out.write(hexDigits[Int(byte & 0xF)])
        default: out.write(byte)
        }
    }
    out.write(UInt8(ascii: "\""))
}

/// Decimal digits written in place (`String(value)` allocates nothing for these but costs more per digit).
private func appendInteger(_ value: Int64, to out: inout JSONLine) {
    if value < 0 { out.write(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var start = 20
        repeat {
            start -= 1
            digits[start] = UInt8(truncatingIfNeeded: 48 + magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        out.write(UnsafeBufferPointer(rebasing: digits[start...]))
    }
}

/// A number as `JSONEncoder` writes it: integral values without a fraction, others as Swift's shortest form. Values
/// with at most three decimals (latencies are rounded so) are written from their digits directly: below 1e9 the
/// shortest form of the double nearest to k/1000 is k/1000's decimal digits.
private func appendNumber(_ value: Double, to out: inout JSONLine) {
    if value == value.rounded(), abs(value) < 1e15 {
        appendInteger(Int64(value), to: &out)
        return
    }
    let thousandths = (value * 1000).rounded()
    guard value > 0, value < 1e9, thousandths / 1000 == value else {
        var text = String(value)
        text.withUTF8 { out.write($0) }
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
    out.write(UInt8(ascii: "."))
    if digits == 3, fraction < 100 { out.write(UInt8(ascii: "0")) }
    if digits >= 2, fraction < 10 { out.write(UInt8(ascii: "0")) }
    appendInteger(fraction, to: &out)
}
