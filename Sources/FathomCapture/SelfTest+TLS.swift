internal import CFathomBPF
import FathomModel
import Foundation
import Logging

extension SelfTest {
    /// The TLS programs: loaded beside the packet capture, their uprobes attached to stand-ins of SSL_write,
    /// SSL_write_ex, SSL_read and SSL_read_ex in fathom's own executable (no TLS library needed, so every kernel of the
    /// matrix runs them), driven over a loopback TCP connection, and the synthesized segments checked: plaintext,
    /// direction, ports and cgroup. Go's crypto/tls probes likewise, on stand-ins with Go's register ABI whose RET
    /// instructions are found by the decoder that finds them in Go binaries. The exec tracepoint is checked by
    /// spawning a process.
    static func tlsPrograms(features: KernelFeatures, logger: Logger) -> [Verdict] {
        let calls = ["SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"]
        let names = calls.map { "tls_" + $0.lowercased() } + ["tls_go_write", "tls_go_read", "tls_ssl_write_return", "tls_exec"]
        guard features.uprobes, features.tracepoints else {
            return names.map { Verdict(program: $0, outcome: .skip, detail: "kernel lacks uprobes or tracepoints") }
        }
        guard features.cgroupV2Mount != nil else {
            return names.map { Verdict(program: $0, outcome: .skip, detail: "kernel lacks a mounted cgroup v2 hierarchy") }
        }
        let collector = CollectingSink()
        let capture: BPFCapture
        let tls: TLSCapture
        do {
            capture = try BPFCapture(configuration: BPFCaptureConfiguration(), logger: logger)
            try capture.start(sink: collector)
            var configuration = TLSCaptureConfiguration()
            configuration.discover = false
            tls = try TLSCapture(sharing: capture, configuration: configuration, logger: logger)
            try tls.start()
            let probes = calls.flatMap { name in
                fathom_selftest_ssl_function(name).map { address in
                    TLSProbe.openSSL(ELFFile.Symbol(name: name, fileOffset: UInt64(UInt(bitPattern: address)), size: 0),
                                     memoryBIO: false)
                } ?? []
            }
            // The memory-BIO stand-in is hooked as an SSL_write of a library with memory BIOs (entry + return).
            let buffered = fathom_selftest_ssl_function("SSL_write buffered").map { address in
                TLSProbe.openSSL(ELFFile.Symbol(name: "SSL_write", fileOffset: UInt64(UInt(bitPattern: address)), size: 0),
                                 memoryBIO: true)
            } ?? []
            _ = try tls.hookOwnCode(probes + buffered + goStandInProbes())
        } catch let error as BPFCaptureError {
            return names.map { Verdict(program: $0, outcome: .fail, detail: verifierSummary(error)) }
        } catch {
            return names.map { Verdict(program: $0, outcome: .fail, detail: "\(error)") }
        }
        let exchange: TCPPair
        do {
            exchange = try TCPPair()
        } catch {
            tls.stop()
            capture.stop()
            return names.map { Verdict(program: $0, outcome: .fail, detail: "cannot open a loopback connection: \(error)") }
        }
        defer { exchange.close() }
        let marker = collector.marker
        let messages = calls.map { marker + Array(" \($0)".utf8) }
        var client = exchange.client
        var server = exchange.server
        var buffer = [UInt8](repeating: 0, count: 4096)
        var count = 0
        // client → server through SSL_write / SSL_read, server → client through SSL_write_ex / SSL_read_ex.
        _ = fathom_selftest_ssl_write(&client, messages[0], Int32(messages[0].count))
        _ = fathom_selftest_ssl_write_ex(&server, messages[1], messages[1].count, &count)
        _ = fathom_selftest_ssl_read(&server, &buffer, Int32(messages[0].count))
        _ = fathom_selftest_ssl_read_ex(&client, &buffer, messages[1].count, &count)
        // Go: client → server through the Write stand-in, read by the Read stand-in, on two goroutines.
        let goMessage = marker + Array(" crypto/tls.(*Conn).Write".utf8)
        var goSize = 0
        if let write = fathom_selftest_go_function("Write", &goSize), let read = fathom_selftest_go_function("Read", &goSize) {
            _ = goMessage.withUnsafeBytes { bytes in
                fathom_selftest_go_call(write, &client, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, 0xC000_0100)
            }
            _ = fathom_selftest_go_call(read, &server, &buffer, buffer.count, 0xC000_0200)
        }
        // Memory BIO: the plaintext buffer is reused before the "ciphertext" leaves, as Node frees it; the record
        // must carry what the write accepted (taken at its return), on the fd the first SSL_write named.
        let bufferedMessage = marker + Array(" SSL_write with a memory BIO".utf8)
        var reused = bufferedMessage
        _ = fathom_selftest_ssl_write_buffered(&client, &reused, Int32(reused.count))
        for index in reused.indices { reused[index] = 0x2a }
        _ = fathom_selftest_flush_buffered(client)
        _ = read(server, &buffer, buffer.count)
        let execs = tls.execEvents.load(ordering: .relaxed)
        let spawned = spawnAndWait(["/proc/self/exe", "--help"]) != nil
        let deadline = Date().addingTimeInterval(2)
        while tls.execEvents.load(ordering: .relaxed) == execs, Date() < deadline { usleep(20_000) }
        let execSeen = tls.execEvents.load(ordering: .relaxed) > execs
        tls.stop()
        capture.stop()

        let ownCgroup = CgroupV2.ownCgroupID(mount: features.cgroupV2Mount)
        let records = collector.records.filter { $0.metadata.source == .ebpfTLS }
        let expectations: [(String, [UInt8], PacketDirection, UInt16, UInt16)] = [
            (names[0], messages[0], .outbound, exchange.clientPort, exchange.serverPort),
            (names[1], messages[1], .outbound, exchange.serverPort, exchange.clientPort),
            (names[2], messages[0], .inbound, exchange.clientPort, exchange.serverPort),
            (names[3], messages[1], .inbound, exchange.serverPort, exchange.clientPort),
            (names[4], goMessage, .outbound, exchange.clientPort, exchange.serverPort),
            (names[5], goMessage, .inbound, exchange.clientPort, exchange.serverPort),
            (names[6], bufferedMessage, .outbound, exchange.clientPort, exchange.serverPort),
        ]
        var verdicts = expectations.map { program, message, direction, sourcePort, destinationPort in
            tlsVerdict(program, records, message: message, direction: direction, sourcePort: sourcePort,
                       destinationPort: destinationPort, cgroup: ownCgroup)
        }
        verdicts.append(
            execSeen
                ? Verdict(program: "tls_exec", outcome: .pass, detail: "exec event received")
                : Verdict(program: "tls_exec", outcome: .fail,
                          detail: spawned ? "no exec event within 2 s of spawning a process" : "cannot spawn a process"))
        return verdicts
    }

    /// The probes of the Go stand-ins, by address: the entry and every RET the decoder finds in their code.
    private static func goStandInProbes() throws -> [TLSProbe] {
        var probes: [TLSProbe] = []
        for (name, program) in [("Write", "tls_go_write"), ("Read", "tls_go_read")] {
            var size = 0
            guard let code = fathom_selftest_go_function(name, &size) else { continue }
            let address = UInt64(UInt(bitPattern: code))
            let returns = try X86Instructions.returnOffsets(UnsafeRawBufferPointer(start: code, count: size))
            guard returns.count == 2 else {
                throw BPFCaptureError(description: "the decoder found \(returns.count) RETs in the \(name) stand-in, not 2", log: "")
            }
            probes.append(TLSProbe(function: "go " + name, fileOffset: address, program: program))
            probes += returns.map { TLSProbe(function: "go " + name, fileOffset: address + UInt64($0), program: "tls_go_return") }
        }
        return probes
    }

    private static func tlsVerdict(
        _ program: String, _ records: [CollectingSink.Record], message: [UInt8], direction: PacketDirection,
        sourcePort: UInt16, destinationPort: UInt16, cgroup: UInt64?
    ) -> Verdict {
        // Synthesized IPv4: 20-byte IP header, 20-byte TCP header, then the plaintext.
        let matching = records.filter {
            $0.metadata.direction == direction && $0.bytes.count == 40 + message.count && Array($0.bytes[40...]) == message
        }
        guard let record = matching.first else {
            return Verdict(program: program, outcome: .fail, detail: "no segment carrying the plaintext came back")
        }
        let ports = (UInt16(record.bytes[20]) << 8 | UInt16(record.bytes[21]), UInt16(record.bytes[22]) << 8 | UInt16(record.bytes[23]))
        guard ports == (sourcePort, destinationPort) else {
            return Verdict(program: program, outcome: .fail,
                           detail: "ports \(ports.0)→\(ports.1), expected \(sourcePort)→\(destinationPort)")
        }
        if let cgroup, record.metadata.cgroupID != cgroup {
            return Verdict(program: program, outcome: .fail, detail: "cgroup id \(record.metadata.cgroupID), expected \(cgroup)")
        }
        return Verdict(program: program, outcome: .pass, detail: "\(message.count) plaintext bytes, ports \(ports.0)→\(ports.1)")
    }

    /// Runs a program to its end with its output discarded; its pid, or nil when it could not be spawned.
    static func spawnAndWait(_ arguments: [String]) -> pid_t? {
        var pid: pid_t = 0
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return nil }
        var status: Int32 = 0
        return waitpid(pid, &status, 0) == pid ? pid : nil
    }
}

/// A TCP connection over 127.0.0.1 with both ends in this process.
struct TCPPair {
    var client: Int32
    var server: Int32
    var clientPort: UInt16
    var serverPort: UInt16

    struct SocketError: Error, CustomStringConvertible {
        var description: String
    }

    init() throws {
        func fail(_ what: String) -> SocketError { SocketError(description: "\(what): \(String(cString: strerror(errno)))") }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw fail("socket") }
        defer { Glibc.close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw fail("bind/listen") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        serverPort = UInt16(bigEndian: address.sin_port)
        let clientFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard clientFD >= 0 else { throw fail("socket") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(clientFD, $0, length) }
        }
        guard connected == 0 else {
            Glibc.close(clientFD)
            throw fail("connect")
        }
        let serverFD = accept(listener, nil, nil)
        guard serverFD >= 0 else {
            Glibc.close(clientFD)
            throw fail("accept")
        }
        var local = sockaddr_in()
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(clientFD, $0, &length) }
        }
        client = clientFD
        server = serverFD
        clientPort = UInt16(bigEndian: local.sin_port)
    }

    func close() {
        Glibc.close(client)
        Glibc.close(server)
    }
}
