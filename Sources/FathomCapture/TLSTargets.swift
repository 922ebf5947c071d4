import Foundation

/// One process × TLS library pair found on the node, and whether its plaintext is visible.
public struct TLSTarget: Sendable, Codable, Equatable {
    public var pid: Int32
    /// The process's executable (as /proc/<pid>/exe names it, inside its mount namespace).
    public var executable: String
    /// The file carrying the TLS code: a libssl.so*, or the executable itself for static OpenSSL/BoringSSL/Go.
    public var library: String
    /// openssl (shared or static OpenSSL/BoringSSL), go, gnutls, nss, java.
    public var kind: String
    public var hooked: Bool
    /// Why not, when not hooked; the symbols hooked when hooked.
    public var detail: String
}

/// What one file (device + inode) offers: the probes to attach to its TLS functions, or why it cannot be hooked.
/// What distinguishes one content of a file from another, cheaply.
struct FileIdentity: Sendable, Equatable {
    var size: Int64
    var modifiedSeconds: Int64
    var modifiedNanoseconds: Int64
}

struct TLSFileVerdict: Sendable {
    var kind: String
    var probes: [TLSProbe]
    /// Set when the file cannot be hooked.
    var reason: String?
}

/// One uprobe to attach: a BPF program at a file offset inside a TLS function.
public struct TLSProbe: Sendable, Equatable {
    /// The function the offset belongs to, as the file names it (`SSL_read/SSL_read_ex` for the common callee of both).
    public internal(set) var function: String
    public internal(set) var fileOffset: UInt64
    public internal(set) var program: String
    public internal(set) var returnProbe: Bool = false

    /// The probes of an OpenSSL/BoringSSL function (prefixed or not); none for a function that is not hooked.
    /// `memoryBIO`: the library moves ciphertext itself after its calls return, so writes get a return probe.
    static func openSSL(_ symbol: ELFFile.Symbol, memoryBIO: Bool) -> [TLSProbe] {
        guard let base = TLSDiscovery.baseFunctionName(symbol.name) else { return [] }
        return TLSCapture.programs(for: base, memoryBIO: memoryBIO).map { program, returnProbe in
            TLSProbe(function: symbol.name, fileOffset: symbol.fileOffset, program: program, returnProbe: returnProbe)
        }
    }
}

/// Finds TLS libraries in processes: every mapped libssl.so*, executables exporting SSL_read/SSL_write (Node,
/// Envoy, swift-nio-ssl's prefixed BoringSSL), and the libraries known to be out of reach (GnuTLS, NSS, Java).
enum TLSDiscovery {
    /// The functions hooked, without any prefix a static build adds (`CNIOBoringSSL_SSL_write`). SSL_set_fd joins a
    /// connection to its fd; a file is hooked only when it has at least one of the others.
    static let functionNames = ["SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_set_fd"]

    /// A file mapped executable by a process.
    struct MappedFile: Hashable {
        var device: String
        var inode: UInt64
        var path: String
    }

    /// The pids of /proc.
    /// Size and modification time of a file, nil when it cannot be stat'ed: a verdict kept for a device and inode
    /// is trusted only while the file there is still the one inspected (inodes are reused).
    static func identity(path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(size: Int64(info.st_size), modifiedSeconds: Int64(info.st_mtim.tv_sec),
                            modifiedNanoseconds: Int64(info.st_mtim.tv_nsec))
    }

    static func pids() -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { Int32($0) }.sorted()
    }

    /// The executable files a process maps, its own executable first; empty when the process is gone.
    static func mappedFiles(pid: Int32) -> (executable: String, files: [MappedFile]) {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
        guard let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else { return (executable, []) }
        var files: [MappedFile] = []
        var seen = Set<MappedFile>()
        for line in maps.split(separator: "\n") {
            // address perms offset dev inode path
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[1].contains("x"), let inode = UInt64(fields[4]), inode != 0 else { continue }
            var path = String(fields[5].drop { $0 == " " })
            guard path.hasPrefix("/") else { continue }
            if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
            let file = MappedFile(device: String(fields[3]), inode: inode, path: path)
            if seen.insert(file).inserted { files.append(file) }
        }
        files.sort { a, b in a.path == executable && b.path != executable }
        return (executable, files)
    }

    /// What kind of TLS library a mapped file is by its name, nil for files that are not TLS libraries by name.
    static func libraryKind(path: String) -> String? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasPrefix("libssl.so") { return "openssl" }
        if name.hasPrefix("libgnutls") { return "gnutls" }
        if name.hasPrefix("libssl3.so") || name.hasPrefix("libnss3.so") { return "nss" }
        if name == "libjvm.so" { return "java" }
        return nil
    }

    /// Inspects a file: the probes for the TLS functions it carries (OpenSSL/BoringSSL, prefixed or not, or Go's
    /// crypto/tls), or why it is out of reach.
    static func inspect(path: String, kind: String?) -> TLSFileVerdict {
        switch kind {
        case "gnutls": return TLSFileVerdict(kind: "gnutls", probes: [], reason: "GnuTLS is not supported")
        case "nss": return TLSFileVerdict(kind: "nss", probes: [], reason: "NSS is not supported")
        case "java": return TLSFileVerdict(kind: "java", probes: [], reason: "Java's JSSE is not supported")
        default: break
        }
        let elf: ELFFile
        do {
            elf = try ELFFile(path: path)
        } catch {
            return TLSFileVerdict(kind: kind ?? "unknown", probes: [], reason: "cannot read \(path): \(error)")
        }
        let functions = (try? elf.functions(containing: "SSL_", where: isTLSFunctionName)) ?? []
        if functions.contains(where: { baseFunctionName($0.name) != "SSL_set_fd" }) {
            // A libssl.so is used by programs that hand it their sockets; an executable (or other library) carrying
            // its own copy usually drives it through memory BIOs from its event loop (Node, Envoy, swift-nio-ssl).
            let memoryBIO = kind == nil
            return TLSFileVerdict(kind: "openssl", probes: openSSLProbes(functions, code: MachineCode(elf), memoryBIO: memoryBIO),
                                  reason: nil)
        }
        let go = GoBinary(elf: elf)
        if go.isGo { return inspectGo(go) }
        return TLSFileVerdict(
            kind: kind ?? "none", probes: [],
            reason: kind == nil ? nil : "no SSL_read/SSL_write symbols found")
    }

    /// `SSL_write`, `SSL_read_ex`…, or the same after a prefix ending in `_` (`CNIOBoringSSL_SSL_write`).
    static func isTLSFunctionName(_ name: UnsafeRawBufferPointer) -> Bool {
        baseFunctionName(name) != nil
    }

    /// The unprefixed name a symbol stands for, nil when it is not one of the hooked functions.
    static func baseFunctionName(_ name: UnsafeRawBufferPointer) -> String? {
        for base in functionNames {
            let utf8 = base.utf8
            guard name.count >= utf8.count else { continue }
            let start = name.count - utf8.count
            guard zip(name[start...], utf8).allSatisfy({ $0 == $1 }) else { continue }
            if start == 0 || name[start - 1] == UInt8(ascii: "_") { return base }
        }
        return nil
    }

    static func baseFunctionName(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { baseFunctionName(UnsafeRawBufferPointer($0)) }
    }
}
