import FathomModel
import Foundation
import Logging
import Synchronization

extension SelfTest {
    /// The process programs: a loopback TCP connection made by this process must come back as a `listen` and a
    /// `connect` event with its ports and pid, and a spawned child as an `exec` and an `exit` event with its pid.
    static func processPrograms(features: KernelFeatures, logger: Logger) -> [Verdict] {
        let names = ["process_exec", "process_exit", "process_socket_state"]
        guard features.tracepoints else {
            return names.map { Verdict(program: $0, outcome: .skip, detail: "kernel lacks tracepoints (no tracefs)") }
        }
        let events = Mutex<[ProcessEvent]>([])
        let tracer: ProcessTracer
        do {
            tracer = try ProcessTracer(logger: logger)
            try tracer.start { event in events.withLock { $0.append(event) } }
        } catch let error as BPFCaptureError {
            return names.map { Verdict(program: $0, outcome: .fail, detail: verifierSummary(error)) }
        } catch {
            return names.map { Verdict(program: $0, outcome: .fail, detail: "\(error)") }
        }
        let ownPID = getpid()
        let pair: TCPPair
        do {
            pair = try TCPPair()
        } catch {
            tracer.stop()
            return names.map { Verdict(program: $0, outcome: .fail, detail: "cannot open a loopback connection: \(error)") }
        }
        pair.close()
        let child = spawnAndWait(["/proc/self/exe", "--help"])
        func seen(_ kind: ProcessEvent.Kind, where check: (ProcessEvent) -> Bool) -> ProcessEvent? {
            events.withLock { $0.first { $0.kind == kind && check($0) } }
        }
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if let child, seen(.exit, where: { $0.pid == child }) != nil,
                seen(.connect, where: { $0.pid == ownPID && $0.localPort == pair.clientPort }) != nil { break }
            usleep(20_000)
        }
        tracer.stop()

        var verdicts: [Verdict] = []
        if let child {
            let exec = seen(.exec, where: { $0.pid == child })
            verdicts.append(exec.map { Verdict(program: names[0], outcome: .pass, detail: "exec of pid \(child) (\($0.filename ?? ""))") }
                ?? Verdict(program: names[0], outcome: .fail, detail: "no exec event for the spawned pid \(child) within 2 s"))
            let exit = seen(.exit, where: { $0.pid == child })
            verdicts.append(exit.map { Verdict(program: names[1], outcome: .pass, detail: "exit of pid \(child) (\($0.command))") }
                ?? Verdict(program: names[1], outcome: .fail, detail: "no exit event for the spawned pid \(child) within 2 s"))
        } else {
            verdicts += names.prefix(2).map { Verdict(program: $0, outcome: .fail, detail: "cannot spawn a process") }
        }
        let listen = seen(.listen, where: { $0.pid == ownPID && $0.localPort == pair.serverPort })
        let connect = seen(.connect, where: {
            $0.pid == ownPID && $0.localPort == pair.clientPort && $0.remotePort == pair.serverPort && $0.remoteIP == "127.0.0.1"
        })
        switch (listen, connect) {
        case (.some, .some):
            verdicts.append(Verdict(program: names[2], outcome: .pass,
                                    detail: "listen on \(pair.serverPort) and connect from \(pair.clientPort) by pid \(ownPID)"))
        case (nil, _):
            verdicts.append(Verdict(program: names[2], outcome: .fail, detail: "no listen event for port \(pair.serverPort) by pid \(ownPID)"))
        case (_, nil):
            verdicts.append(Verdict(program: names[2], outcome: .fail,
                                    detail: "no connect event for \(pair.clientPort) → \(pair.serverPort) by pid \(ownPID)"))
        }
        if tracer.losses > 0 { logger.warning("process events lost during the self-test: \(tracer.losses)") }
        return verdicts
    }
}
