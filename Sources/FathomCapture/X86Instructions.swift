/// A length decoder for x86-64 machine code: where each instruction of a function starts, and which are RET, so that
/// uprobes can be put on every return of a Go function (a uretprobe would corrupt a stack the Go runtime moves).
///
/// A uprobe replaces an instruction's first byte with INT3; put anywhere else it corrupts the instruction. So the
/// decoder is strict: it knows the legacy/REX/VEX/EVEX encodings of 64-bit mode, and any byte it cannot place
/// (an opcode invalid in 64-bit mode, XOP, 3DNow!, an instruction running past the end) makes the whole function
/// refused rather than guessed at. It only measures lengths: operands are not decoded.
enum X86Instructions {
    struct DecodeError: Error, CustomStringConvertible, Equatable {
        /// Offset of the instruction that could not be decoded, from the start of the code.
        var offset: Int
        var reason: String

        var description: String { "cannot decode the x86-64 instruction at byte \(offset): \(reason)" }
    }

    /// The offsets of every RET (C3, C2 iw, and their REP-prefixed forms) in `code`, which must be whole
    /// instructions from its first byte to its last.
    static func returnOffsets(_ code: UnsafeRawBufferPointer) throws(DecodeError) -> [Int] {
        var returns: [Int] = []
        var offset = 0
        while offset < code.count {
            let instruction = try decode(code, at: offset)
            if instruction.isReturn { returns.append(offset) }
            offset += instruction.length
        }
        return returns
    }

    /// The start of every instruction in `code` (for tests against a disassembler).
    static func boundaries(_ code: UnsafeRawBufferPointer) throws(DecodeError) -> [Int] {
        var starts: [Int] = []
        var offset = 0
        while offset < code.count {
            starts.append(offset)
            offset += try decode(code, at: offset).length
        }
        return starts
    }

    struct Instruction: Equatable {
        var length: Int
        var isReturn: Bool
    }

    private enum OpcodeMap {
        case oneByte, twoByte, threeByte38, threeByte3A
    }

    /// Decodes the length of the instruction at `start`.
    static func decode(_ code: UnsafeRawBufferPointer, at start: Int) throws(DecodeError) -> Instruction {
        var cursor = start
        func fail(_ reason: String) -> DecodeError { DecodeError(offset: start, reason: reason) }
        func next() throws(DecodeError) -> UInt8 {
            guard cursor < code.count, cursor - start < 15 else { throw fail("runs past the end or over 15 bytes") }
            defer { cursor += 1 }
            return code[cursor]
        }
        func peek() -> UInt8? { cursor < code.count ? code[cursor] : nil }

        var operandSize16 = false
        var addressSize32 = false
        var rexW = false
        // Legacy prefixes, in any order.
        var byte = try next()
        while Self.legacyPrefixes.contains(byte) {
            if byte == 0x66 { operandSize16 = true }
            if byte == 0x67 { addressSize32 = true }
            byte = try next()
        }
        // REX must come right before the opcode.
        if byte & 0xF0 == 0x40 {
            rexW = byte & 0x08 != 0
            byte = try next()
        }

        var map = OpcodeMap.oneByte
        var opcode = byte
        // VEX (C4: three bytes, C5: two bytes) and EVEX (62: four bytes) carry their own map; in 64-bit mode these
        // bytes are always such prefixes (LES/LDS/BOUND do not exist there).
        if byte == 0xC4 || byte == 0xC5 || byte == 0x62 {
            let selector: UInt8
            if byte == 0xC5 {
                _ = try next()
                selector = 1
            } else if byte == 0xC4 {
                selector = try next() & 0x1F
                _ = try next()
            } else {
                let p0 = try next()
                guard p0 & 0x0C == 0 else { throw fail("reserved EVEX bits set") }
                selector = p0 & 0x03
                let p1 = try next()
                guard p1 & 0x04 != 0 else { throw fail("reserved EVEX bit clear") }
                _ = try next()
            }
            switch selector {
            case 1: map = .twoByte
            case 2: map = .threeByte38
            case 3: map = .threeByte3A
            default: throw fail("unknown VEX/EVEX opcode map \(selector)")
            }
            opcode = try next()
            // VZEROUPPER/VZEROALL (map 1, 77) are the only VEX instructions without a ModRM.
            if !(map == .twoByte && opcode == 0x77) {
                try modRM(&cursor, code, start: start, addressSize32: addressSize32)
            }
            var immediate = map == .threeByte3A ? 1 : 0
            if map == .twoByte, Self.twoByteImm8.contains(opcode) { immediate = 1 }
            cursor += immediate
            guard cursor <= code.count else { throw fail("immediate runs past the end") }
            return Instruction(length: cursor - start, isReturn: false)
        }

        if byte == 0x0F {
            opcode = try next()
            switch opcode {
            case 0x38:
                map = .threeByte38
                opcode = try next()
            case 0x3A:
                map = .threeByte3A
                opcode = try next()
            default:
                map = .twoByte
            }
        }

        let zImmediate = operandSize16 && !rexW ? 2 : 4  // Iz: a word with 66, else a dword (also under REX.W)
        var hasModRM = false
        var immediate = 0
        var isReturn = false
        switch map {
        case .oneByte:
            switch opcode {
            case 0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x60, 0x61, 0x82, 0x9A, 0xCE, 0xD4,
                0xD5, 0xD6, 0xEA:
                throw fail("opcode \(hex(opcode)) is invalid in 64-bit mode")
            case 0x00...0x3F:
                switch opcode & 0x07 {
                case 0...3: hasModRM = true
                case 4: immediate = 1
                case 5: immediate = zImmediate
                default: throw fail("opcode \(hex(opcode)) is invalid in 64-bit mode")  // prefixes handled above
                }
            case 0x50...0x5F, 0x90...0x99, 0x9B...0x9F, 0xA4...0xA7, 0xAA...0xAF, 0xC3, 0xC9, 0xCB, 0xCC, 0xCF,
                0xD7, 0xEC...0xEF, 0xF1, 0xF4, 0xF5, 0xF8...0xFD:
                isReturn = opcode == 0xC3
            case 0x63, 0x84...0x8E, 0xD0...0xD3, 0xD8...0xDF, 0xFE, 0xFF:
                hasModRM = true
            case 0x8F:
                hasModRM = true
                if let m = peek(), (m >> 3) & 7 != 0 { throw fail("XOP encoding is not supported") }
            case 0x69, 0x81, 0xC7:
                hasModRM = true
                immediate = zImmediate
            case 0x6B, 0x80, 0x83, 0xC0, 0xC1, 0xC6:
                hasModRM = true
                immediate = 1
            case 0x68, 0xA9, 0xE8, 0xE9:
                immediate = opcode >= 0xE8 ? 4 : zImmediate
            case 0x6A, 0x70...0x7F, 0xA8, 0xB0...0xB7, 0xCD, 0xE0...0xE7, 0xEB:
                immediate = 1
            case 0x6C...0x6F:
                break
            case 0xA0...0xA3:
                immediate = addressSize32 ? 4 : 8  // moffs
            case 0xB8...0xBF:
                immediate = rexW ? 8 : zImmediate
            case 0xC2, 0xCA:
                immediate = 2
                isReturn = opcode == 0xC2
            case 0xC8:
                immediate = 3
            case 0xF6, 0xF7:
                hasModRM = true
                // TEST r/m, imm is /0 (and /1); NOT, NEG, MUL, IMUL, DIV, IDIV take no immediate.
                if let m = peek(), (m >> 3) & 7 < 2 { immediate = opcode == 0xF6 ? 1 : zImmediate }
            default:
                throw fail("unknown opcode \(hex(opcode))")
            }
        case .twoByte:
            switch opcode {
            case 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0E, 0x30...0x37, 0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA,
                0xC8...0xCF:
                break
            case 0x0F:
                throw fail("3DNow! is not supported")
            case 0x04, 0x0A, 0x0C, 0x24...0x27, 0x36, 0x39, 0x3B...0x3F, 0x7A, 0x7B, 0xA6, 0xA7, 0xFF:
                if opcode == 0xFF {
                    hasModRM = true  // UD0 takes a ModRM
                } else {
                    throw fail("opcode 0F \(hex(opcode)) is invalid")
                }
            case 0x80...0x8F:
                immediate = 4  // Jcc rel32 (66 does not shorten near branches in 64-bit mode on Intel)
            default:
                hasModRM = true
                if Self.twoByteImm8.contains(opcode) { immediate = 1 }
            }
        case .threeByte38:
            hasModRM = true
        case .threeByte3A:
            hasModRM = true
            immediate = 1
        }
        if hasModRM { try modRM(&cursor, code, start: start, addressSize32: addressSize32) }
        cursor += immediate
        guard cursor <= code.count, cursor - start <= 15 else { throw fail("runs past the end or over 15 bytes") }
        return Instruction(length: cursor - start, isReturn: isReturn)
    }

    private static let legacyPrefixes: Set<UInt8> = [0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65]

    /// Two-byte-map opcodes (0F xx, and VEX/EVEX map 1) that take an 8-bit immediate after their ModRM.
    private static let twoByteImm8: Set<UInt8> = [0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6]

    /// Skips a ModRM byte, its SIB byte and its displacement.
    private static func modRM(_ cursor: inout Int, _ code: UnsafeRawBufferPointer, start: Int, addressSize32: Bool)
        throws(DecodeError)
    {
        guard cursor < code.count else { throw DecodeError(offset: start, reason: "ModRM runs past the end") }
        let modrm = code[cursor]
        cursor += 1
        let mod = modrm >> 6
        let rm = modrm & 7
        guard mod != 3 else { return }
        var displacement = mod == 1 ? 1 : mod == 2 ? 4 : 0
        if rm == 4 {
            guard cursor < code.count else { throw DecodeError(offset: start, reason: "SIB runs past the end") }
            let sib = code[cursor]
            cursor += 1
            if mod == 0 && sib & 7 == 5 { displacement = 4 }
        } else if mod == 0 && rm == 5 {
            displacement = 4  // RIP-relative (EIP-relative under 67)
        }
        cursor += displacement
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
