import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension HTTPClient.Response {
    /// The whole body; throws `bodyTooLarge` past `limit` bytes.
    public func collect(limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in body {
            guard bytes.count + chunk.readableBytes <= limit else { throw HTTPClientError.bodyTooLarge(limit: limit) }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    /// Streams the body into `path` and returns its size. The body goes to a temporary file beside `path` that
    /// replaces `path` only once the body has ended, so a failed download leaves no partial file behind.
    public func write(toFile path: String) async throws -> Int64 {
        let partial = "\(path).partial-\(getpid())"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HTTPClientError.cannotWrite(path: partial, operation: "open", errno: errno) }
        var written: Int64 = 0
        do {
            for try await chunk in body {
                try chunk.withUnsafeReadableBytes { try writeAll(fd, $0, path: partial) }
                written += Int64(chunk.readableBytes)
            }
        } catch {
            close(fd)
            unlink(partial)
            throw error
        }
        // close reports a failed delayed write (NFS, a full disk); the descriptor is released either way.
        guard close(fd) == 0 else {
            let code = errno
            unlink(partial)
            throw HTTPClientError.cannotWrite(path: partial, operation: "close", errno: code)
        }
        guard rename(partial, path) == 0 else {
            let code = errno
            unlink(partial)
            throw HTTPClientError.cannotWrite(path: path, operation: "rename", errno: code)
        }
        return written
    }
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while offset < bytes.count {
        let result = write(fd, base + offset, bytes.count - offset)
        if result < 0 {
            if errno == EINTR { continue }
            throw HTTPClientError.cannotWrite(path: path, operation: "write", errno: errno)
        }
        offset += result
    }
}
