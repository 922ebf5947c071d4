/// What a Go executable tells about itself without DWARF: its Go version (from `.go.buildinfo`) and where its
/// functions are (from the symbol table, or from the runtime's own function table `.gopclntab`, which stripping with
/// `-ldflags="-s -w"` keeps because the runtime needs it for stack traces).
struct GoBinary {
    let elf: ELFFile

    /// A function's code in the file.
    struct Function: Equatable {
        var name: String
        var fileOffset: UInt64
        var size: UInt64
    }

    enum GoError: Error, CustomStringConvertible, Equatable {
        case noFunctionTable
        case badFunctionTable(String, offset: UInt64)

        var description: String {
            switch self {
            case .noFunctionTable: "no Go function table (.gopclntab) found"
            case .badFunctionTable(let what, let offset): "malformed .gopclntab: \(what) at byte \(offset)"
            }
        }
    }

    /// Whether the file is a Go executable (it has a build-info or function-table section).
    var isGo: Bool {
        elf.section(named: ".go.buildinfo") != nil || elf.section(named: ".gopclntab") != nil
    }

    /// The Go release that built the file ("go1.19.8"), nil when the build info cannot be read.
    var version: String? {
        guard let info = elf.section(named: ".go.buildinfo"), info.size >= 32,
            let header = try? elf.bytes(at: info.offset, count: 32),
            header.starts(with: [0xFF] + Array(" Go buildinf:".utf8))
        else { return nil }
        let pointerSize = Int(header[14])
        let flags = header[15]
        if flags & 0x2 != 0 {
            // Go >= 1.18: the version follows inline as a uvarint-prefixed string.
            return try? inlineString(at: info.offset + 32)
        }
        // Go < 1.18: a pointer to the runtime.buildVersion string header (pointer, length).
        guard pointerSize == 8, flags & 0x1 == 0, let address = try? elf.u64(info.offset + 16),
            let headerOffset = elf.fileOffset(ofAddress: address), let textAddress = try? elf.u64(headerOffset),
            let length = try? elf.u64(headerOffset + 8), length < 128, let textOffset = elf.fileOffset(ofAddress: textAddress),
            let text = try? elf.bytes(at: textOffset, count: Int(length))
        else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    /// Major and minor of a version string such as "go1.19.8" or "devel go1.22-abcdef".
    static func release(_ version: String) -> (major: Int, minor: Int)? {
        guard let range = version.range(of: "go1.") else { return nil }
        let minor = version[range.upperBound...].prefix { $0.isNumber }
        return Int(minor).map { (1, $0) }
    }

    private func inlineString(at offset: UInt64) throws -> String? {
        var length: UInt64 = 0
        var shift: UInt64 = 0
        var cursor = offset
        while shift < 63 {
            let byte = try elf.byte(cursor)
            cursor += 1
            length |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length < 128 else { return nil }
        return String(decoding: try elf.bytes(at: cursor, count: Int(length)), as: UTF8.self)
    }

    /// The named functions: from the symbol table when it has them, else from `.gopclntab`.
    func functions(named names: Set<String>) throws -> [Function] {
        let symbols = try elf.functions { raw in names.contains(String(decoding: raw, as: UTF8.self)) }
        if Set(symbols.map(\.name)) == names {
            return symbols.map { Function(name: $0.name, fileOffset: $0.fileOffset, size: $0.size) }
        }
        return try functionTableEntries(named: names)
    }

    /// The named functions as the runtime's function table lists them (Go 1.16 and later layouts).
    func functionTableEntries(named names: Set<String>) throws -> [Function] {
        guard let table = functionTableOffset() else { throw GoError.noFunctionTable }
        let magic = try elf.u32(table)
        let modern: Bool  // Go >= 1.18: 32-bit function offsets from textStart
        switch magic {
        case 0xFFFF_FFF0, 0xFFFF_FFF1: modern = true
        case 0xFFFF_FFFA: modern = false
        default: throw GoError.badFunctionTable("unknown magic \(String(magic, radix: 16))", offset: table)
        }
        guard try elf.byte(table + 7) == 8 else { throw GoError.badFunctionTable("pointer size is not 8", offset: table + 7) }
        let functionCount = try elf.u64(table + 8)
        var textStart: UInt64 = 0
        var field = table + 24
        if modern {
            textStart = try elf.u64(field)
            field += 8
            // Relocated at load time in position-independent executables: the runtime's text starts with .text.
            if textStart == 0 { textStart = elf.section(named: ".text")?.address ?? 0 }
        }
        let nameTable = table &+ (try elf.u64(field))
        let functab = table &+ (try elf.u64(field + 32))
        let entrySize: UInt64 = modern ? 8 : 16
        guard functionCount < 10_000_000, functab &+ (functionCount + 1) &* entrySize <= UInt64(elf.data.count) else {
            throw GoError.badFunctionTable("function count \(functionCount) exceeds the file", offset: table + 8)
        }
        func entry(_ index: UInt64) throws -> (address: UInt64, info: UInt64) {
            let at = functab + index * entrySize
            return modern
                ? (textStart &+ UInt64(try elf.u32(at)), UInt64(try elf.u32(at + 4)))
                : (try elf.u64(at), try elf.u64(at + 8))
        }
        var found: [Function] = []
        let longest = names.map(\.utf8.count).max() ?? 0
        for index in 0..<functionCount {
            let (address, infoOffset) = try entry(index)
            let nameOffset = try elf.u32(functab &+ infoOffset &+ (modern ? 4 : 8))
            let nameStart = nameTable &+ UInt64(nameOffset)
            guard let name = try? elf.cString(at: nameStart, limit: longest + 1), names.contains(name) else { continue }
            let end = try entry(index + 1).address
            guard end > address, let offset = elf.fileOffset(ofAddress: address) else {
                throw GoError.badFunctionTable("function \(name) has no code in the file", offset: functab + index * entrySize)
            }
            found.append(Function(name: name, fileOffset: offset, size: end - address))
        }
        return found
    }

    /// Where the function table starts: its own section, or (position-independent builds, where it lives in
    /// .data.rel.ro) the first header that checks out there.
    private func functionTableOffset() -> UInt64? {
        if let section = elf.section(named: ".gopclntab") { return section.offset }
        guard let section = elf.section(named: ".data.rel.ro"), section.offset < UInt64(elf.data.count) else { return nil }
        let end = min(UInt64(elf.data.count), section.offset &+ section.size)
        var offset = section.offset
        while offset + 16 <= end {
            if let magic = try? elf.u32(offset), magic == 0xFFFF_FFF1 || magic == 0xFFFF_FFF0,
                (try? elf.u16(offset + 4)) == 0, (try? elf.byte(offset + 6)) == 1, (try? elf.byte(offset + 7)) == 8
            {
                return offset
            }
            offset += 8
        }
        return nil
    }
}
