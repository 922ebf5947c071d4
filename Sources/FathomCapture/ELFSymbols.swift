import Foundation

/// Reads the function symbols and section table of a 64-bit little-endian ELF file (x86_64 executables and shared
/// libraries), enough to find where to put uprobes. Every offset read from the file is bounds-checked.
struct ELFFile {
    struct Section {
        var name: String
        var type: UInt32
        var flags: UInt64
        var address: UInt64
        var offset: UInt64
        var size: UInt64
    }

    struct Symbol {
        var name: String
        /// Offset of the function's first byte in the file: what a uprobe is attached at.
        var fileOffset: UInt64
        var size: UInt64
    }

    enum ParseError: Error, CustomStringConvertible {
        case notELF64
        case truncated(what: String, offset: UInt64)
        case unreadable(path: String, errno: Int32)

        var description: String {
            switch self {
            case .notELF64: "not a 64-bit little-endian ELF file"
            case .truncated(let what, let offset): "\(what) runs past the end of the file at byte \(offset)"
            case .unreadable(let path, let errno): "cannot read \(path): \(String(cString: strerror(errno)))"
            }
        }
    }

    let data: Data
    /// The file `data` maps, when it maps one: its machine code is read from there (see `bytes(at:count:)`).
    private let path: String?
    private(set) var sections: [Section] = []

    static let symbolTable: UInt32 = 2  // SHT_SYMTAB
    static let dynamicSymbolTable: UInt32 = 11  // SHT_DYNSYM

    init(path: String) throws {
        try self.init(data: Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), path: path)
    }

    init(data: Data, path: String? = nil) throws {
        self.data = data
        self.path = path
        guard data.count >= 64, data.starts(with: [0x7f, 0x45, 0x4c, 0x46]), identByte(4) == 2, identByte(5) == 1 else {
            throw ParseError.notELF64
        }
        let tableOffset = try u64(0x28)
        let entrySize = UInt64(try u16(0x3A))
        let count = UInt64(try u16(0x3C))
        let namesIndex = UInt64(try u16(0x3E))
        guard entrySize >= 64 || count == 0 else { throw ParseError.truncated(what: "section header", offset: 0x3A) }
        var raw: [(name: UInt32, type: UInt32, flags: UInt64, address: UInt64, offset: UInt64, size: UInt64)] = []
        for i in 0..<count {
            let (base, overflow) = tableOffset.addingReportingOverflow(i &* entrySize)
            guard !overflow else { throw ParseError.truncated(what: "section header \(i)", offset: tableOffset) }
            raw.append((try u32(base), try u32(base + 4), try u64(base + 8), try u64(base + 16), try u64(base + 24),
                        try u64(base + 32)))
        }
        let names = namesIndex < raw.count ? raw[Int(namesIndex)] : nil
        sections = raw.map { entry in
            let name = names.flatMap { string(at: $0.offset, index: UInt64(entry.name), limit: $0.size) } ?? ""
            return Section(name: name, type: entry.type, flags: entry.flags, address: entry.address, offset: entry.offset,
                           size: entry.size)
        }
    }

    func section(named name: String) -> Section? { sections.first { $0.name == name } }

    /// The section holding machine code (SHF_EXECINSTR) at a file offset, if any.
    func codeSection(containing offset: UInt64) -> Section? {
        let executable: UInt64 = 0x4
        return sections.first { $0.flags & executable != 0 && offset >= $0.offset && offset - $0.offset < $0.size }
    }

    /// Defined function symbols of .symtab and .dynsym whose name passes `wanted` (given the raw name bytes, so that
    /// the many symbols of a large binary are not all turned into strings). Duplicates by name are dropped.
    /// `containing`: every wanted name contains these bytes, so a table whose strings lack them is skipped whole
    /// (one memmem instead of a look at each of its symbols: most programs carry no TLS function at all).
    func functions(containing needle: String? = nil, where wanted: (UnsafeRawBufferPointer) -> Bool) throws -> [Symbol] {
        let sectionTable = try u64(0x28)
        let entrySize = UInt64(try u16(0x3A))
        var found: [Symbol] = []
        var seen = Set<String>()
        for (index, table) in sections.enumerated()
        where table.type == Self.symbolTable || table.type == Self.dynamicSymbolTable {
            let linkIndex = try u32(sectionTable &+ UInt64(index) &* entrySize &+ 40)
            guard linkIndex < sections.count else { continue }
            let strings = sections[Int(linkIndex)]
            data.withUnsafeBytes { (file: UnsafeRawBufferPointer) in
                let size = UInt64(file.count)
                guard table.offset <= size, strings.offset <= size else { return }
                let symbolCount = min(table.size, size - table.offset) / 24
                let stringsEnd = Int(min(size, strings.offset &+ min(strings.size, size)))
                if let needle, !Self.contains(UnsafeRawBufferPointer(rebasing: file[Int(strings.offset)..<stringsEnd]), needle) {
                    return
                }
                for i in 0..<symbolCount {
                    let entry = Int(table.offset + i * 24)
                    let info = file[entry + 4]
                    let sectionIndex = Int(file.loadUnaligned(fromByteOffset: entry + 6, as: UInt16.self))
                    let value = file.loadUnaligned(fromByteOffset: entry + 8, as: UInt64.self)
                    guard info & 0xf == 2, sectionIndex != 0, value != 0, sectionIndex < sections.count else { continue }
                    let nameStart = UInt64(file.loadUnaligned(fromByteOffset: entry, as: UInt32.self)) &+ strings.offset
                    guard nameStart < UInt64(stringsEnd) else { continue }
                    var nameEnd = Int(nameStart)
                    while nameEnd < stringsEnd, file[nameEnd] != 0 { nameEnd += 1 }
                    guard nameEnd < stringsEnd else { continue }
                    let name = UnsafeRawBufferPointer(rebasing: file[Int(nameStart)..<nameEnd])
                    guard wanted(name) else { continue }
                    let text = String(decoding: name, as: UTF8.self)
                    let home = sections[sectionIndex]
                    guard value >= home.address, seen.insert(text).inserted else { continue }
                    let length = file.loadUnaligned(fromByteOffset: entry + 16, as: UInt64.self)
                    found.append(Symbol(name: text, fileOffset: value - home.address + home.offset, size: length))
                }
            }
        }
        return found
    }

    /// Whether `needle` occurs in `haystack` (memchr for its first byte, then a compare: memmem is not in Glibc's
    /// Swift module).
    private static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { needle in
            guard let base = haystack.baseAddress, let wanted = needle.baseAddress, !needle.isEmpty else { return false }
            var start = 0
            while haystack.count - start >= needle.count {
                guard let hit = memchr(base + start, Int32(wanted.pointee), haystack.count - start - needle.count + 1)
                else { return false }
                if memcmp(hit, wanted, needle.count) == 0 { return true }
                start = base.distance(to: UnsafeRawPointer(hit)) + 1
            }
            return false
        }
    }

    private func stringRange(at tableOffset: UInt64, index: UInt64, limit: UInt64) -> Range<Int>? {
        guard index < limit else { return nil }
        let (start, overflow) = tableOffset.addingReportingOverflow(index)
        guard !overflow, start < UInt64(data.count) else { return nil }
        let end = min(UInt64(data.count), tableOffset &+ limit)
        guard let nul = data[Int(start)..<Int(end)].firstIndex(of: 0) else { return nil }
        return Int(start)..<nul
    }

    private func string(at tableOffset: UInt64, index: UInt64, limit: UInt64) -> String? {
        stringRange(at: tableOffset, index: index, limit: limit).map { String(decoding: data[$0], as: UTF8.self) }
    }

    /// Where the byte at a virtual address lies in the file, through the section holding it (not for .bss).
    func fileOffset(ofAddress address: UInt64) -> UInt64? {
        let noBits: UInt32 = 8  // SHT_NOBITS
        guard let home = sections.first(where: {
            $0.type != noBits && $0.address != 0 && address >= $0.address && address - $0.address < $0.size
        }) else { return nil }
        return address - home.address + home.offset
    }

    /// `count` bytes from `offset`, as the file holds them. Read with pread, not through the mapping: the kernel puts
    /// a uprobe's INT3 into every mapping of the file that may execute, a read-only one like `data` included, so
    /// while any uprobe is attached to the file (this agent's, an earlier instance's, another tool's) the mapping
    /// shows 0xCC where instructions begin, and code decoded from it was misread (Go functions "without a RET").
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, count >= 0, end <= UInt64(data.count) else { throw ParseError.truncated(what: "\(count) bytes", offset: offset) }
        guard let path else {
            let start = data.startIndex + Int(offset)
            return [UInt8](data[start..<start + count])
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ParseError.unreadable(path: path, errno: errno) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ParseError.truncated(what: "\(count) bytes", offset: offset) }
            done += n
        }
        return bytes
    }

    /// The NUL-terminated string at `offset`, nil when it is longer than `limit` bytes.
    func cString(at offset: UInt64, limit: Int) throws -> String? {
        guard offset < UInt64(data.count) else { throw ParseError.truncated(what: "a string", offset: offset) }
        let start = data.startIndex + Int(offset)
        let end = min(data.endIndex, start + limit + 1)
        guard let nul = data[start..<end].firstIndex(of: 0) else { return nil }
        return String(decoding: data[start..<nul], as: UTF8.self)
    }

    func byte(_ offset: UInt64) throws -> UInt8 {
        guard offset < UInt64(data.count) else { throw ParseError.truncated(what: "a field", offset: offset) }
        return data[data.startIndex + Int(offset)]
    }

    private func identByte(_ offset: Int) -> UInt8 { data[data.startIndex + offset] }

    func u16(_ offset: UInt64) throws -> UInt16 { UInt16(try little(offset, 2)) }
    func u32(_ offset: UInt64) throws -> UInt32 { UInt32(try little(offset, 4)) }
    func u64(_ offset: UInt64) throws -> UInt64 { try little(offset, 8) }

    private func little(_ offset: UInt64, _ width: Int) throws -> UInt64 {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(width))
        guard !overflow, end <= UInt64(data.count) else { throw ParseError.truncated(what: "a field", offset: offset) }
        var value: UInt64 = 0
        let start = data.startIndex + Int(offset)
        for i in (0..<width).reversed() { value = value << 8 | UInt64(data[start + i]) }
        return value
    }
}
