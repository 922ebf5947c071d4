import Foundation
import XCTest

@testable import FathomCapture

final class X86InstructionsTests: XCTestCase {
    private func lengths(_ bytes: [UInt8]) throws -> [Int] {
        try bytes.withUnsafeBytes { code in
            let starts = try X86Instructions.boundaries(code)
            return zip(starts, starts.dropFirst() + [code.count]).map { $1 - $0 }
        }
    }

    private func returns(_ bytes: [UInt8]) throws -> [Int] {
        try bytes.withUnsafeBytes { try X86Instructions.returnOffsets($0) }
    }

    /// Instructions the Go compiler emits in crypto/tls functions, each checked against objdump's reading.
    func testLengthsOfTypicalGoCode() throws {
        let cases: [(String, [UInt8])] = [
            ("cmp rsp,[r14+0x10]", [0x49, 0x3B, 0x66, 0x10]),
            ("jbe rel32", [0x0F, 0x86, 0x10, 0x02, 0x00, 0x00]),
            ("sub rsp,0x58", [0x48, 0x83, 0xEC, 0x58]),
            ("mov [rsp+0x50],rbp", [0x48, 0x89, 0x6C, 0x24, 0x50]),
            ("lea rbp,[rsp+0x50]", [0x48, 0x8D, 0x6C, 0x24, 0x50]),
            ("movups [rsp+0x30],xmm15", [0x44, 0x0F, 0x11, 0x7C, 0x24, 0x30]),
            ("lea rcx,[rip+0x1234]", [0x48, 0x8D, 0x0D, 0x34, 0x12, 0x00, 0x00]),
            ("call rel32", [0xE8, 0x00, 0x00, 0x00, 0x00]),
            ("mov eax,imm32", [0xB8, 0x01, 0x00, 0x00, 0x00]),
            ("movabs rax,imm64", [0x48, 0xB8, 1, 2, 3, 4, 5, 6, 7, 8]),
            ("mov ax,imm16", [0x66, 0xB8, 0x01, 0x00]),
            ("test byte [rax+0x8],0x1", [0xF6, 0x40, 0x08, 0x01]),
            ("neg rax", [0x48, 0xF7, 0xD8]),
            ("test dword [rip+x],imm32", [0xF7, 0x05, 0, 0, 0, 0, 1, 0, 0, 0]),
            ("nop word [rax+rax*1+0x0]", [0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00]),
            ("xorps xmm15,xmm15", [0x45, 0x0F, 0x57, 0xFF]),
            ("mov rax,fs:[0xfffffffffffffff8]", [0x64, 0x48, 0x8B, 0x04, 0x25, 0xF8, 0xFF, 0xFF, 0xFF]),
            ("vzeroupper", [0xC5, 0xF8, 0x77]),
            ("vmovdqu ymm0,[rsi]", [0xC5, 0xFE, 0x6F, 0x06]),
            ("vpalignr ymm1,ymm2,ymm3,0x8", [0xC4, 0xE3, 0x6D, 0x0F, 0xCB, 0x08]),
            ("vmovdqu64 zmm0,[rsi+0x40]", [0x62, 0xF1, 0xFE, 0x48, 0x6F, 0x46, 0x01]),
            ("pshufd xmm0,xmm1,0x1b", [0x66, 0x0F, 0x70, 0xC1, 0x1B]),
            ("pclmulqdq xmm0,xmm1,0x0", [0x66, 0x0F, 0x3A, 0x44, 0xC1, 0x00]),
            ("aesenc xmm0,xmm1", [0x66, 0x0F, 0x38, 0xDC, 0xC1]),
            ("lock cmpxchg [rdx],ecx", [0xF0, 0x0F, 0xB1, 0x0A]),
            ("mov rax,[rsp+rcx*8+0x100]", [0x48, 0x8B, 0x84, 0xCC, 0x00, 0x01, 0x00, 0x00]),
            ("mov rax,[rcx*8+0x100]", [0x48, 0x8B, 0x04, 0xCD, 0x00, 0x01, 0x00, 0x00]),
            ("syscall", [0x0F, 0x05]),
            ("int3", [0xCC]),
            ("ret", [0xC3]),
            ("ret 0x8", [0xC2, 0x08, 0x00]),
            ("jmp rel8", [0xEB, 0x05]),
        ]
        for (name, bytes) in cases {
            XCTAssertEqual(try lengths(bytes), [bytes.count], name)
        }
    }

    func testReturnsAreFoundOnlyAtInstructionStarts() throws {
        // mov eax,0xc3c3c3c3 ; test rax,rax ; jne +1 ; ret ; xor eax,eax ; rep ret ; int3 padding
        let code: [UInt8] = [0xB8, 0xC3, 0xC3, 0xC3, 0xC3, 0x48, 0x85, 0xC0, 0x75, 0x01, 0xC3, 0x31, 0xC0, 0xF3, 0xC3, 0xCC, 0xCC]
        XCTAssertEqual(try returns(code), [10, 13])
    }

    func testUndecodableCodeIsRefusedNotGuessed() {
        // An opcode invalid in 64-bit mode, an instruction cut short, XOP.
        for (code, offset) in [([0xC3, 0x06], 1), ([0x48, 0x8B], 0), ([0x8F, 0xE8, 0x78, 0xC2, 0xC1, 0x01], 0)] as [([UInt8], Int)] {
            XCTAssertThrowsError(try returns(code)) { error in
                XCTAssertEqual((error as? X86Instructions.DecodeError)?.offset, offset, "\(code)")
            }
        }
    }

    /// Every instruction boundary of whole executables agrees with objdump's, function by function: this test
    /// system's `ls` (GCC), and the binaries named in FATHOM_X86_CORPUS
    /// (colon-separated; Go builds for instance).
    func testBoundariesAgreeWithObjdump() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/objdump") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { return XCTFail("objdump (binutils) is needed") }
            throw XCTSkip("objdump (binutils) is not installed")
        }
        let extra = ProcessInfo.processInfo.environment["FATHOM_X86_CORPUS"]?.split(separator: ":").map(String.init) ?? []
        for path in ["/usr/bin/ls"] + extra {
            try compareWithObjdump(path)
        }
    }

    private func compareWithObjdump(_ path: String) throws {
        let elf = try ELFFile(path: path)
        let text = try XCTUnwrap(elf.section(named: ".text"), path)
        let code = try elf.bytes(at: text.offset, count: Int(text.size))
        let objdump = Process()
        objdump.executableURL = URL(fileURLWithPath: "/usr/bin/objdump")
        objdump.arguments = ["-d", "-w", "--no-show-raw-insn", "-j", ".text", path]
        let pipe = Pipe()
        objdump.standardOutput = pipe
        try objdump.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        objdump.waitUntilExit()
        // objdump's listing per symbol: "0000000000401000 <name>:" then "  401000:\tmov ..." lines. Symbols with
        // bytes objdump cannot decode either hold data (Go's crypto markers, Node's embedded tables): left aside.
        var functions: [(start: Int, instructions: [Int], bad: Bool)] = []
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            if line.hasSuffix(">:"), let space = line.firstIndex(of: " "), let value = UInt64(line[..<space], radix: 16),
                value >= text.address
            {
                functions.append((Int(value - text.address), [], false))
                continue
            }
            // "\t..." stands for a run of zeros objdump skipped: that symbol is not compared either.
            if line.trimmingCharacters(in: .whitespaces) == "...", !functions.isEmpty { functions[functions.count - 1].bad = true }
            guard let colon = line.firstIndex(of: ":"), line.hasPrefix(" "), !functions.isEmpty else { continue }
            let address = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard let value = UInt64(address, radix: 16), value >= text.address else { continue }
            functions[functions.count - 1].instructions.append(Int(value - text.address))
            if line.contains("(bad)") || line.contains(".byte") { functions[functions.count - 1].bad = true }
        }
        let checked = functions.enumerated().filter { !$0.element.bad && !$0.element.instructions.isEmpty }
        XCTAssertFalse(checked.isEmpty, path)
        for (index, function) in checked {
            let end = index + 1 < functions.count ? functions[index + 1].start : code.count
            guard function.start >= 0, end <= code.count, function.start < end else { continue }
            let ours = try code[function.start..<end].withUnsafeBytes { try X86Instructions.boundaries($0) }
            XCTAssertEqual(ours.map { $0 + function.start }, function.instructions,
                           "\(path): function at .text+\(String(function.start, radix: 16))")
            if ours.map({ $0 + function.start }) != function.instructions { return }
        }
    }
}
