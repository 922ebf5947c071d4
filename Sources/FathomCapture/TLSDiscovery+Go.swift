extension TLSDiscovery {
    /// The Go functions hooked: the plaintext a program writes and reads through crypto/tls.
    static let goWrite = "crypto/tls.(*Conn).Write"
    static let goRead = "crypto/tls.(*Conn).Read"

    /// The probes of a Go executable: crypto/tls.(*Conn).Write and Read at their entry and at every RET (found by
    /// decoding the function's machine code), or why it cannot be hooked. Executables without crypto/tls are not
    /// TLS targets at all.
    static func inspectGo(_ binary: GoBinary) -> TLSFileVerdict {
        let functions: [GoBinary.Function]
        do {
            functions = try binary.functions(named: [goWrite, goRead])
        } catch {
            return TLSFileVerdict(kind: "go", probes: [], reason: "\(error)")
        }
        guard !functions.isEmpty else { return TLSFileVerdict(kind: "go", probes: [], reason: nil) }
        guard let version = binary.version else {
            return TLSFileVerdict(kind: "go", probes: [], reason: "unknown Go version: no readable .go.buildinfo")
        }
        guard let release = GoBinary.release(version) else {
            return TLSFileVerdict(kind: "go", probes: [], reason: "unknown Go version \(version)")
        }
        guard release.minor >= 17 else {
            return TLSFileVerdict(
                kind: "go", probes: [],
                reason: "\(version) passes arguments on the stack: only Go 1.17 and later (register ABI) are supported")
        }
        var probes: [TLSProbe] = []
        for function in functions {
            let returns: [Int]
            do {
                let code = try binary.elf.bytes(at: function.fileOffset, count: Int(clamping: function.size))
                returns = try code.withUnsafeBytes { bytes throws(X86Instructions.DecodeError) in
                    try X86Instructions.returnOffsets(bytes)
                }
            } catch {
                return TLSFileVerdict(kind: "go", probes: [], reason: "\(function.name): \(error)")
            }
            guard !returns.isEmpty else {
                return TLSFileVerdict(kind: "go", probes: [], reason: "\(function.name): no RET instruction found")
            }
            let entry = function.name == goWrite ? "tls_go_write" : "tls_go_read"
            probes.append(TLSProbe(function: function.name, fileOffset: function.fileOffset, program: entry))
            for offset in returns {
                probes.append(TLSProbe(function: function.name, fileOffset: function.fileOffset + UInt64(offset),
                                       program: "tls_go_return"))
            }
        }
        return TLSFileVerdict(kind: "go", probes: probes, reason: nil)
    }
}
