// Throughput of the dissection engine over a capture, one core: `run.sh FILE.pcap` builds this with -O and runs it.
// Not part of the test target (excluded in Package.swift); it reuses the tests' pcap reader.
import FathomDissect
import FathomModel
import Foundation

final class CountingSink: DissectionSink {
    var calls = 0
    var flows = 0
    func emit(call: Call) { calls += 1 }
    func emit(flow: Flow) { flows += 1 }
}

@main
struct DissectBenchmark {
    static func main() throws {
        let path = CommandLine.arguments.dropFirst().first ?? "/tmp/dissect-bench.pcap"
        let file = try TestPcapFile(contentsOf: URL(fileURLWithPath: path))
        let bytes = file.packets.reduce(0) { $0 + $1.bytes.count }
        let sink = CountingSink()
        let engine = DissectionEngine(node: "bench", sink: sink)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for packet in file.packets {
                packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) }
            }
            engine.finish()
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let megabytes = Double(bytes) / 1_000_000
        print("packets \(file.packets.count)  MB \(String(format: "%.1f", megabytes))  calls \(sink.calls)  flows \(sink.flows)")
        print(String(format: "%.3f s  %.0f calls/s  %.1f MB/s", seconds, Double(sink.calls) / seconds, megabytes / seconds))
        print("statistics: gaps \(engine.statistics.gaps) dropped \(engine.statistics.bytesDroppedOverMemoryBound) unparsable \(engine.statistics.unparsableBytes)")
    }
}
