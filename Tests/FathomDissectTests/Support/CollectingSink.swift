import FathomDissect
import FathomModel

/// Keeps everything an engine emits.
final class CollectingSink: DissectionSink {
    var calls: [Call] = []
    var flows: [Flow] = []
    var names: [(ip: String, name: String)] = []

    func emit(call: consuming Call) { calls.append(call) }
    func emit(flow: Flow) { flows.append(flow) }
    func learned(name: String, for ip: String) { names.append((ip, name)) }
}

/// Runs packets through a fresh engine and returns what it emitted, calls ordered by start time.
func dissect(
    _ packets: [TestPcapFile.Packet], configuration: DissectionConfiguration = DissectionConfiguration()
) -> (sink: CollectingSink, engine: DissectionEngine) {
    let sink = CollectingSink()
    let engine = DissectionEngine(configuration, node: "n1", sink: sink)
    for packet in packets {
        packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) }
    }
    engine.finish()
    sink.calls.sort { ($0.ts, $0.id.count, $0.id) < ($1.ts, $1.id.count, $1.id) }
    return (sink, engine)
}
