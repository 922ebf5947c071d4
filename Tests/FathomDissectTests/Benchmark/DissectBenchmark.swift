// Throughput of the dissection engine over a capture, one core: `run.sh FILE.pcap` builds this with -O and runs it.
// Not part of the test target (excluded in Package.swift); it reuses the tests' pcap reader.
import FathomDissect
import FathomModel
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time of this thread, seconds: wall time is meaningless on a shared, loaded machine.
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

final class CountingSink: DissectionSink {
    var calls = 0
    var flows = 0
    func emit(call: consuming Call) { calls += 1 }
    func emit(flow: Flow) { flows += 1 }
}

@main
struct DissectBenchmark {
    @discardableResult
    static func run(_ file: TestPcapFile, sink: CountingSink) -> DissectionEngine {
        let engine = DissectionEngine(node: "bench", sink: sink)
        for packet in file.packets {
            packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) }
        }
        engine.finish()
        return engine
    }

    static func main() throws {
        let path = CommandLine.arguments.dropFirst().first ?? "/tmp/dissect-bench.pcap"
        let file = try TestPcapFile(contentsOf: URL(fileURLWithPath: path))
        let bytes = file.packets.reduce(0) { $0 + $1.bytes.count }
        // BENCH_PROFILE_ROUNDS=N dissects the file N more times first, so a profiler sees mostly the engine.
        let warmRounds = Int(ProcessInfo.processInfo.environment["BENCH_PROFILE_ROUNDS"] ?? "") ?? 0
        for _ in 0..<warmRounds { run(file, sink: CountingSink()) }
        let sink = CountingSink()
        var engine: DissectionEngine?
        let clock = ContinuousClock()
        let cpuStart = threadCPUSeconds()
        let elapsed = clock.measure { engine = run(file, sink: sink) }
        guard let engine else { return }
        let cpu = threadCPUSeconds() - cpuStart
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let megabytes = Double(bytes) / 1_000_000
        print("packets \(file.packets.count)  MB \(String(format: "%.1f", megabytes))  calls \(sink.calls)  flows \(sink.flows)")
        print(String(format: "wall %.3f s  %.0f calls/s  %.1f MB/s", seconds, Double(sink.calls) / seconds, megabytes / seconds))
        print(String(format: "cpu  %.3f s  %.0f calls/s  %.1f MB/s", cpu, Double(sink.calls) / cpu, megabytes / cpu))
        print("statistics: gaps \(engine.statistics.gaps) dropped \(engine.statistics.bytesDroppedOverMemoryBound) unparsable \(engine.statistics.unparsableBytes)")
    }
}
