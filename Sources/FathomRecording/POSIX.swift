#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over the few system calls the recording needs, returning errno instead of setting a global.
enum POSIX {
    /// The C library's text for an errno value, e.g. "No space left on device".
    static func describe(errno code: Int32) -> String { String(cString: strerror(code)) }

    static var lastErrno: Int32 { errno }

    /// "Invalid argument": what a file system that does not allow direct I/O answers.
    static let invalidArgument = EINVAL

    /// Writes all of `bytes` at file offset `offset`; returns 0 or the errno of the failed write and how much went out.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> (errno: Int32, written: Int) {
        guard let base = bytes.baseAddress else { return (0, 0) }
        var written = 0
        while written < bytes.count {
            let n = pwrite(fd, base + written, bytes.count - written, off_t(offset) + off_t(written))
            if n > 0 {
                written += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                // A write returning 0 for a non-empty buffer only happens on a full device: call it ENOSPC.
                return (n == 0 ? ENOSPC : errno, written)
            }
        }
        return (0, written)
    }

    /// Reads up to `count` bytes at `offset` into `destination`; returns the byte count or -errno.
    static func readAt(_ fd: Int32, _ destination: UnsafeMutableRawPointer, _ count: Int, _ offset: UInt64) -> Int {
        var total = 0
        while total < count {
            let n = pread(fd, destination + total, count - total, off_t(offset) + off_t(total))
            if n > 0 {
                total += n
            } else if n == 0 {
                break
            } else if errno == EINTR {
                continue
            } else {
                return -Int(errno)
            }
        }
        return total
    }

    static func openForReading(_ path: String) -> (fd: Int32, errno: Int32) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        return (fd, fd < 0 ? errno : 0)
    }

    /// Linux's O_DIRECT, which Glibc's Swift module leaves out (it needs _GNU_SOURCE); its value depends on the
    /// architecture.
    #if arch(arm64)
    static let directFlag: Int32 = 0o200000
    #else
    static let directFlag: Int32 = 0o40000
    #endif

    /// What direct I/O needs aligned: buffer addresses, file offsets and lengths. 4096 satisfies every common block
    /// device and file system.
    static let directAlignment = 4096

    /// A transparent huge page on x86-64 and most arm64 kernels.
    static let hugePageBytes = 2 << 20

    /// A buffer for direct I/O: page-aligned, and when it spans whole huge pages, huge-page aligned and marked for
    /// transparent huge pages, so a direct write pins one page per 2 MiB instead of 512 (the kernel's share of a
    /// direct write is mostly pinning and mapping the buffer's pages) and filling it faults once per 2 MiB.
    /// Free it with `deallocate()`.
    static func allocateIOBuffer(byteCount: Int) -> UnsafeMutableRawPointer {
        guard byteCount % hugePageBytes == 0 else {
            return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: directAlignment)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: hugePageBytes)
        _ = madvise(buffer, byteCount, MADV_HUGEPAGE)  // advice only: without THP the buffer works all the same
        return buffer
    }

    /// `bytes` rounded up to whole direct-I/O pages.
    static func wholePages(_ bytes: Int) -> Int { (bytes + directAlignment - 1) & ~(directAlignment - 1) }

    /// Reads at most `count` bytes at `offset` with one read (O_DIRECT reads must stay aligned, so a short read is
    /// not continued: it can only mean the end of the file); returns the byte count or -errno.
    static func readOnceAt(_ fd: Int32, _ destination: UnsafeMutableRawPointer, _ count: Int, _ offset: UInt64) -> Int {
        while true {
            let n = pread(fd, destination, count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { return -Int(errno) }
        }
    }

    /// Turns direct I/O (O_DIRECT) on or off for an open file; false when the flags cannot be changed.
    static func setDirect(_ fd: Int32, _ on: Bool) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | directFlag : flags & ~directFlag) == 0
    }

    /// Opens an existing file for direct (O_DIRECT) writes; -1 where the file system does not allow them (tmpfs).
    static func openForDirectWriting(_ path: String) -> Int32 {
        open(path, O_WRONLY | directFlag | O_CLOEXEC)
    }

    /// Creates a new file that must not exist yet.
    static func createExclusive(_ path: String) -> (fd: Int32, errno: Int32) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        return (fd, fd < 0 ? errno : 0)
    }

    static func closeFile(_ fd: Int32) { _ = close(fd) }

    static func truncateFile(_ fd: Int32, to length: UInt64) -> Int32 {
        ftruncate(fd, off_t(length)) == 0 ? 0 : errno
    }

    static func truncatePath(_ path: String, to length: UInt64) -> Int32 {
        truncate(path, off_t(length)) == 0 ? 0 : errno
    }

    static func removeFile(_ path: String) -> Int32 {
        if unlink(path) == 0 { return 0 }
        return errno == ENOENT ? 0 : errno
    }

    /// Size of a regular file, or nil when it cannot be stat'ed.
    static func fileSize(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(max(0, info.st_size))
    }

    static func fileSize(descriptor fd: Int32) -> UInt64? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return UInt64(max(0, info.st_size))
    }

    /// Creates `path` and its missing parents; returns 0 or the errno of the first failure.
    static func makeDirectories(_ path: String) -> Int32 {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 {
                let code = errno
                var info = stat()
                if code == EEXIST || (stat(prefix, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR) {
                    guard stat(prefix, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return ENOTDIR }
                    continue
                }
                return code
            }
        }
        return 0
    }

    /// Names of the entries of a directory, without "." and "..".
    static func listDirectory(_ path: String) -> (names: [String], errno: Int32) {
        guard let dir = opendir(path) else { return ([], errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return (names, 0)
    }

    /// Bytes an unprivileged process may still write on the filesystem holding `path`.
    static func availableBytes(_ path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) &* UInt64(info.f_frsize)
    }

    static let noSpace = ENOSPC
    static let quotaExceeded = EDQUOT
}
