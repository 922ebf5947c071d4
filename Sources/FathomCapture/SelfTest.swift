import FathomModel
import Foundation
import Logging

/// `fathom selftest`: loads and attaches every program the agent ships on this kernel, drives loopback traffic
/// through them and checks the records that come back, one verdict per program.
public enum SelfTest {
    public struct Verdict: Sendable {
        public enum Outcome: String, Sendable { case pass = "PASS", fail = "FAIL", skip = "SKIP" }
        public var program: String
        public var outcome: Outcome
        public var detail: String

        /// `program: PASS (detail)`, `program: FAIL: verifier says …`, `program: SKIP: kernel lacks …`.
        public var line: String {
            if detail.isEmpty { return "\(program): \(outcome.rawValue)" }
            return outcome == .pass ? "\(program): PASS (\(detail))" : "\(program): \(outcome.rawValue): \(detail)"
        }
    }

    public static func run(logger: Logger) -> (features: KernelFeatures, verdicts: [Verdict]) {
        let features = KernelFeatures.probe()
        var verdicts: [Verdict] = []
        verdicts.append(contentsOf: cgroupPrograms(features: features, logger: logger))
        verdicts.append(contentsOf: tcPrograms(features: features, logger: logger))
        verdicts.append(contentsOf: tlsPrograms(features: features, logger: logger))
        verdicts.append(contentsOf: processPrograms(features: features, logger: logger))
        return (features, verdicts)
    }

    private static func cgroupPrograms(features: KernelFeatures, logger: Logger) -> [Verdict] {
        let names = ["capture_cgroup_ingress", "capture_cgroup_egress"]
        guard features.cgroupV2Mount != nil else {
            return names.map { Verdict(program: $0, outcome: .skip, detail: "kernel lacks a mounted cgroup v2 hierarchy") }
        }
        let collector = CollectingSink()
        let capture: BPFCapture
        do {
            capture = try BPFCapture(configuration: BPFCaptureConfiguration(), logger: logger)
            try capture.start(sink: collector)
        } catch let error as BPFCaptureError {
            return names.map { Verdict(program: $0, outcome: .fail, detail: verifierSummary(error)) }
        } catch {
            return names.map { Verdict(program: $0, outcome: .fail, detail: "\(error)") }
        }
        let statistics = capture.programStatistics()
        let exchange: LoopbackExchange
        do {
            exchange = try LoopbackExchange.udp(marker: collector.marker)
        } catch {
            capture.stop()
            return names.map { Verdict(program: $0, outcome: .fail, detail: "cannot drive loopback traffic: \(error)") }
        }
        capture.stop()
        let ownCgroup = CgroupV2.ownCgroupID(mount: features.cgroupV2Mount)
        return [
            verdict("capture_cgroup_ingress", collector.records, direction: .inbound,
                    cookie: exchange.receiverCookie, cgroup: ownCgroup, linkType: LinkType.rawIP, statistics),
            verdict("capture_cgroup_egress", collector.records, direction: .outbound,
                    cookie: exchange.senderCookie, cgroup: ownCgroup, linkType: LinkType.rawIP, statistics),
        ]
    }

    private static func tcPrograms(features: KernelFeatures, logger: Logger) -> [Verdict] {
        let names = ["capture_tc_ingress", "capture_tc_egress"]
        guard features.tc else { return names.map { Verdict(program: $0, outcome: .skip, detail: "kernel lacks tc BPF programs") } }
        let collector = CollectingSink()
        var configuration = BPFCaptureConfiguration()
        configuration.interfaces = ["lo"]
        let capture: BPFCapture
        do {
            capture = try BPFCapture(configuration: configuration, logger: logger)
            try capture.start(sink: collector)
        } catch let error as BPFCaptureError {
            return names.map { Verdict(program: $0, outcome: .fail, detail: verifierSummary(error)) }
        } catch {
            return names.map { Verdict(program: $0, outcome: .fail, detail: "\(error)") }
        }
        defer { capture.stop() }
        let statistics = capture.programStatistics()
        do {
            _ = try LoopbackExchange.udp(marker: collector.marker)
        } catch {
            return names.map { Verdict(program: $0, outcome: .fail, detail: "cannot drive loopback traffic: \(error)") }
        }
        capture.stop()
        // On lo, tc sees Ethernet frames; the cgroup programs (attached too) see raw IP. Look at Ethernet only.
        return [
            verdict("capture_tc_ingress", collector.records, direction: .inbound, cookie: nil, cgroup: nil,
                    linkType: LinkType.ethernet, statistics),
            verdict("capture_tc_egress", collector.records, direction: .outbound, cookie: nil, cgroup: nil,
                    linkType: LinkType.ethernet, statistics),
        ]
    }

    private static func verdict(
        _ program: String, _ records: [CollectingSink.Record], direction: PacketDirection, cookie: UInt64?,
        cgroup: UInt64?, linkType: UInt16, _ statistics: [BPFCapture.ProgramStatistics]
    ) -> Verdict {
        let matching = records.filter { $0.metadata.direction == direction && $0.metadata.linkType == linkType }
        guard let record = matching.first else {
            return Verdict(program: program, outcome: .fail, detail: "no record of the test datagram came back")
        }
        if let cookie, record.metadata.socketCookie != cookie {
            return Verdict(program: program, outcome: .fail,
                           detail: "socket cookie \(record.metadata.socketCookie), expected \(cookie)")
        }
        if let cgroup, record.metadata.cgroupID != cgroup {
            return Verdict(program: program, outcome: .fail, detail: "cgroup id \(record.metadata.cgroupID), expected \(cgroup)")
        }
        var detail = "\(matching.count) record(s), \(record.bytes.count) bytes"
        if let s = statistics.first(where: { $0.name == program }) {
            detail += "; insns=\(s.instructions) jited=\(s.jitedBytes)B verified=\(s.verifiedInstructions)"
        }
        return Verdict(program: program, outcome: .pass, detail: detail)
    }

    /// The verifier's last lines say why it refused; the whole log is for `--verbose`.
    static func verifierSummary(_ error: BPFCaptureError) -> String {
        let lines = error.log.split(separator: "\n").suffix(3).joined(separator: " | ")
        return lines.isEmpty ? error.description : "\(error.description); verifier says: \(lines)"
    }
}

/// Keeps the records carrying the self-test's marker; everything else the kernel captures meanwhile is ignored.
final class CollectingSink: PacketSink, @unchecked Sendable {
    struct Record {
        var metadata: PacketMetadata
        var bytes: [UInt8]
    }
    let marker: [UInt8] = Array("fathom-selftest-\(UInt64.random(in: 0...UInt64.max))".utf8)
    private let lock = NSLock()
    private var kept: [Record] = []

    var records: [Record] {
        lock.lock()
        defer { lock.unlock() }
        return kept
    }

    func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {
        guard packet.count >= marker.count, contains(packet) else { return }
        lock.lock()
        kept.append(Record(metadata: metadata, bytes: Array(packet)))
        lock.unlock()
    }

    private func contains(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard let first = marker.first else { return false }
        var i = 0
        while i + marker.count <= packet.count {
            if packet[i] == first, marker.indices.allSatisfy({ packet[i + $0] == marker[$0] }) { return true }
            i += 1
        }
        return false
    }

    func tick(nowNanoseconds: UInt64) {}
}
