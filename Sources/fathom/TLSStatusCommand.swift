import ArgumentParser
import FathomAgent
import FathomCapture
import Foundation

/// `fathom tls-status`: which processes' TLS the running agent decrypts, and why the others are not visible.
struct TLSStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-status",
        abstract: "List the processes and TLS libraries the agent found, hooked or not and why (GET /tls/targets).")

    @Option(help: "HOST:PORT of the agent's HTTP API.") var agent = "127.0.0.1:8421"
    @Option(help: "Bearer token of the agent's HTTP API.") var token: String?
    @Flag(help: "Print the agent's JSON as it is.") var json = false
    @Option(help: ArgumentHelp("Print the uprobes the agent would attach to this file (a libssl, or a program with its own TLS code), without asking an agent.", valueName: "FILE"))
    var probes: String?

    func run() throws {
        if let probes {
            try printPlan(TLSProbePlan(path: probes), of: probes)
            return
        }
        let (host, port) = try AgentCommand.parseListen(agent)
        let body = try SimpleHTTP.get(host: host, port: port, path: "/tls/targets", token: token)
        if json {
            FileHandle.standardOutput.write(body)
            return
        }
        let report: TLSTargetsReport
        do {
            report = try JSONDecoder().decode(TLSTargetsReport.self, from: body)
        } catch {
            throw ValidationError("the agent's answer is not a TLS targets report: \(error)")
        }
        guard report.enabled else {
            print("TLS plaintext capture is off: \(report.reason ?? "no reason given")")
            return
        }
        print("PID\tHOOKED\tKIND\tEXECUTABLE\tLIBRARY\tDETAIL")
        for t in report.targets {
            print("\(t.pid)\t\(t.hooked ? "yes" : "no")\t\(t.kind)\t\(t.executable)\t\(t.library)\t\(t.detail)")
        }
        let hooked = report.targets.filter(\.hooked).count
        print("\(report.targets.count) target(s), \(hooked) hooked, \(report.targets.count - hooked) not visible")
    }

    /// One line per uprobe: function, program, file offset (hex), entry or return.
    private func printPlan(_ plan: TLSProbePlan, of path: String) throws {
        if let reason = plan.reason { throw CommandFailure("\(path) (\(plan.kind)) cannot be hooked: \(reason)") }
        guard !plan.probes.isEmpty else { throw CommandFailure("\(path) carries no TLS function fathom hooks") }
        print("FUNCTION\tPROGRAM\tOFFSET\tKIND")
        for probe in plan.probes {
            print("\(probe.function)\t\(probe.program)\t0x\(String(probe.fileOffset, radix: 16))\t\(probe.returnProbe ? "return" : "entry")")
        }
    }
}

/// A one-shot HTTP/1.1 GET over TCP, enough to ask a local agent (no dependency on libcurl).
enum SimpleHTTP {
    static func get(host: String, port: Int, path: String, token: String?) throws -> Data {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw ValidationError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw ValidationError("no agent at \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw ValidationError("cannot send the request") }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while response.count < 64 << 20 {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        guard let split = response.range(of: Data("\r\n\r\n".utf8)) else {
            throw ValidationError("the agent sent no complete HTTP response")
        }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        guard head.hasPrefix("HTTP/1.1 200") || head.hasPrefix("HTTP/1.0 200") else {
            throw ValidationError("the agent answered: \(head.split(separator: "\r\n").first ?? "")")
        }
        var body = Data(response[split.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = try dechunk(body) }
        return body
    }

    /// Joins a chunked body; throws on a malformed chunk size.
    static func dechunk(_ data: Data) throws -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw ValidationError("malformed chunked body")
            }
            if size == 0 { break }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size else { throw ValidationError("truncated chunked body") }
            let end = rest.index(start, offsetBy: size)
            out.append(rest[start..<end])
            rest = rest[min(rest.index(end, offsetBy: 2, limitedBy: rest.endIndex) ?? rest.endIndex, rest.endIndex)...]
        }
        return out
    }
}
