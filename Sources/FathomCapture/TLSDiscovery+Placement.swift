/// Where an OpenSSL function's uprobes go, so that each hit costs one trap instead of two.
///
/// A uprobe replaces an instruction with INT3. After the BPF program runs, the kernel either emulates the original
/// instruction (on x86-64: a push of a register, relative calls and jumps) or copies it out of line and single-steps
/// it, which is a second trap. On this project's VM the single step is most of a probe's cost: 0.7 µs a hit on a
/// `push %r13`, 12–14 µs on a `sub $0x18,%rsp` (empty bpftrace probes on a small C program; README, TLS).
/// OpenSSL 3's `SSL_read` and `SSL_write` start with such a `sub`; they are thin wrappers that pass their arguments to
/// an internal function (`ssl_read_internal(s, buf, num, &readbytes)`) that starts with pushes. `SSL_read_ex` calls
/// the same function with its own four arguments untouched, so that function has `SSL_read_ex`'s arguments and
/// result: one entry and one return probe there, with the `_ex` programs, see every call of both wrappers at a trap
/// each.
///
/// Nothing is guessed: the redirection is made only when both wrappers' first call goes to the same function, the
/// `_ex` one touches no argument register before it, and that function starts with an instruction the kernel
/// emulates. Otherwise each function is probed at its entry (after an `endbr64`, when what follows is emulated).
extension TLSDiscovery {
    /// The wrapper pairs whose common callee may carry the probes of both: plain and `_ex`.
    static let wrapperPairs = [("SSL_read", "SSL_read_ex"), ("SSL_write", "SSL_write_ex")]

    /// The probes of a file's OpenSSL/BoringSSL functions, placed where the kernel emulates the probed instruction
    /// when the code allows.
    static func openSSLProbes(_ functions: [ELFFile.Symbol], code: MachineCode, memoryBIO: Bool) -> [TLSProbe] {
        var byBase: [String: ELFFile.Symbol] = [:]
        for symbol in functions {
            if let base = baseFunctionName(symbol.name), byBase[base] == nil { byBase[base] = symbol }
        }
        var probes: [TLSProbe] = []
        var redirected = Set<String>()
        for (plain, extended) in wrapperPairs {
            guard let wrapper = byBase[plain], let extendedWrapper = byBase[extended],
                code.emulatedEntry(wrapper.fileOffset) == nil || code.emulatedEntry(extendedWrapper.fileOffset) == nil,
                let callee = code.firstCall(from: extendedWrapper.fileOffset, argumentsUntouched: true),
                code.firstCall(from: wrapper.fileOffset, argumentsUntouched: false) == callee,
                let entry = code.emulatedEntry(callee)
            else { continue }
            let probed = ELFFile.Symbol(name: extendedWrapper.name, fileOffset: entry, size: 0)
            probes += TLSProbe.openSSL(probed, memoryBIO: memoryBIO).map { probe in
                var probe = probe
                probe.function = "\(wrapper.name)/\(extendedWrapper.name)"
                return probe
            }
            redirected.formUnion([plain, extended])
        }
        for symbol in functions {
            guard let base = baseFunctionName(symbol.name), !redirected.contains(base) else { continue }
            var placed = symbol
            placed.fileOffset = code.emulatedEntry(symbol.fileOffset) ?? symbol.fileOffset
            probes += TLSProbe.openSSL(placed, memoryBIO: memoryBIO)
        }
        return probes
    }

    /// A file's machine code, read by file offset, and the few instruction facts probe placement needs.
    struct MachineCode {
        /// `count` bytes at a file offset, nil when out of the file's code.
        var bytes: (UInt64, Int) -> [UInt8]?

        /// How far into a function `firstCall` looks.
        static let prologueBytes = 64

        /// The function's entry when the kernel emulates its first instruction, or the instruction after a leading
        /// `endbr64` when that one is emulated (a return probe there still finds the return address on top of the
        /// stack); nil otherwise.
        func emulatedEntry(_ offset: UInt64) -> UInt64? {
            guard let head = bytes(offset, 8) else { return nil }
            if Self.isEmulatedPush(head[...]) { return offset }
            if head.count > 4, head.starts(with: Self.endbr64), Self.isEmulatedPush(head[4...]) { return offset + 4 }
            return nil
        }

        /// The file offset a function's first `call rel32` goes to, looking through its prologue only. With
        /// `argumentsUntouched`, every instruction before the call must be one that leaves the argument registers
        /// and the arguments on the stack as the caller set them (pushes, `mov %rsp,%rbp`, `sub $n,%rsp`,
        /// `endbr64`); any other instruction, a return or an undecodable byte gives nil.
        func firstCall(from offset: UInt64, argumentsUntouched: Bool) -> UInt64? {
            guard let code = bytes(offset, Self.prologueBytes) else { return nil }
            var at = 0
            while at < code.count {
                guard let length = code.withUnsafeBytes({ try? X86Instructions.decode($0, at: at).length }),
                    at + length <= code.count
                else { return nil }
                let instruction = code[at..<at + length]
                if instruction.first == 0xE8, length == 5 {
                    let displacement = Int32(bitPattern: UInt32(code[at + 1]) | UInt32(code[at + 2]) << 8
                        | UInt32(code[at + 3]) << 16 | UInt32(code[at + 4]) << 24)
                    let (target, overflow) = Int64(offset).addingReportingOverflow(Int64(at + 5) + Int64(displacement))
                    guard !overflow, target > 0 else { return nil }
                    return UInt64(target)
                }
                if instruction.first == 0xC3 || instruction.first == 0xC2 || instruction.first == 0xE9
                    || instruction.first == 0xEB
                {
                    return nil  // the function returns or jumps away before any call
                }
                if argumentsUntouched && !Self.leavesArgumentsAlone(instruction) { return nil }
                at += length
            }
            return nil
        }

        static let endbr64: [UInt8] = [0xF3, 0x0F, 0x1E, 0xFA]

        /// `push %reg` (50–57) or `push %r8`–`%r15` (41 50–57): the kernel emulates these (Linux ≥ 5.x on x86-64).
        static func isEmulatedPush(_ code: ArraySlice<UInt8>) -> Bool {
            guard let first = code.first else { return false }
            if (0x50...0x57).contains(first) { return true }
            let rest = code.dropFirst()
            return first == 0x41 && rest.first.map { (0x50...0x57).contains($0) } == true
        }

        /// Instructions a prologue may run before passing its own arguments on unchanged.
        static func leavesArgumentsAlone(_ instruction: ArraySlice<UInt8>) -> Bool {
            let bytes = Array(instruction)
            if bytes == endbr64 || bytes == [0x48, 0x89, 0xE5] { return true }  // endbr64, mov %rsp,%rbp
            if bytes.count == 4 && bytes[0...2] == [0x48, 0x83, 0xEC] { return true }  // sub $imm8,%rsp
            if bytes.count == 7 && bytes[0...2] == [0x48, 0x81, 0xEC] { return true }  // sub $imm32,%rsp
            // Pushes of callee-saved registers: %rbx, %rbp, %r12–%r15 (pushing an argument register is harmless
            // too, but no compiler does it before passing the arguments on).
            if bytes == [0x53] || bytes == [0x55] { return true }
            return bytes.count == 2 && bytes[0] == 0x41 && (0x54...0x57).contains(bytes[1])
        }
    }
}

extension TLSDiscovery.MachineCode {
    /// The code of an ELF file: bytes of the executable section holding the offset (up to its end), nil elsewhere.
    /// A call's target is computed in file offsets, which holds because code sections share one loadable segment,
    /// where file offsets and addresses differ by the same amount.
    init(_ elf: ELFFile) {
        self.init { offset, count in
            guard let section = elf.codeSection(containing: offset) else { return nil }
            return try? elf.bytes(at: offset, count: Int(min(UInt64(count), section.offset + section.size - offset)))
        }
    }
}

/// The uprobes the agent attaches to a file, worked out without an agent (`fathom tls-status --probes FILE`): to see
/// whether a program's TLS is reachable before deploying, and for `bench/tls.sh` to put empty probes at the same
/// places.
public struct TLSProbePlan: Sendable {
    public var kind: String
    public var probes: [TLSProbe]
    /// Why the file cannot be hooked.
    public var reason: String?

    /// A file is taken as a libssl by its name, else as a program that may carry its own TLS code.
    public init(path: String) {
        let verdict = TLSDiscovery.inspect(path: path, kind: TLSDiscovery.libraryKind(path: path))
        (kind, probes, reason) = (verdict.kind, verdict.probes, verdict.reason)
    }
}
