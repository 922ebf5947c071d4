import ArgumentParser
import FathomCapture
import Foundation
import Logging

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Probe this kernel, load and attach every BPF program, drive loopback traffic, check the records."
    )

    func run() throws {
        let logger = Logger(label: "fathom.selftest")
        let (features, verdicts) = SelfTest.run(logger: logger)
        print("kernel \(features.kernelRelease)")
        let offers: [(String, Bool)] = [
            ("btf", features.btf), ("ringbuf", features.ringBuffer), ("cgroup_skb", features.cgroupSKB),
            ("tc", features.tc), ("tracepoints", features.tracepoints), ("uprobes", features.uprobes),
            ("kprobes", features.kprobes),
        ]
        print("features " + offers.map { "\($0.0)=\($0.1 ? "yes" : "no")" }.joined(separator: " ")
              + " cgroup2=\(features.cgroupV2Mount ?? "none")")
        for verdict in verdicts { print(verdict.line) }
        if verdicts.contains(where: { $0.outcome == .fail }) { throw ExitCode(1) }
    }
}
