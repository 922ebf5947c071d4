import ArgumentParser
import FathomDissect
import FathomModel
import FathomRecording
import FathomStore
import Foundation

/// Offline dissection: pcap/pcapng files from any tool (the agent's segments included) into calls.
struct DissectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dissect",
        abstract: "Dissect pcap/pcapng files into API calls: JSON lines or a table on stdout, or a calls database.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, table }

    @Argument(help: "pcap or pcapng files, read in order as one capture.") var files: [String]
    @Option(help: "Write the calls into this calls database (created if missing) instead of printing them.") var out: String?
    @Option(help: "jsonl (one compact call a line) or table.") var format = Format.jsonl
    @Option(help: "Node name for call ids.") var node = "offline"

    func run() throws {
        let sink = PrintingSink(format: format, database: try out.map { try CallsDatabase(path: $0) })
        let engine = DissectionEngine(node: node, sink: sink)
        for file in files {
            let reader: PacketFileReader
            do {
                reader = try PacketFileReader(path: file)
            } catch {
                throw CommandFailure("\(file): \(error)")
            }
            // Each file is read whole, once: ahead, on a thread, around the page cache.
            reader.readAheadDirectly()
            do {
                while let record = try reader.next() { engine.process(record.metadata, record.bytes) }
            } catch {
                throw CommandFailure("\(file): \(error)")
            }
            if let torn = reader.tornTail {
                FileHandle.standardError.write("\(file): \(torn); the packets before it were dissected\n")
            }
        }
        engine.finish()
        try sink.finish()
        let s = engine.statistics
        FileHandle.standardError.write(
            "\(s.callsEmitted) calls, \(s.flowsEmitted) connections from \(s.packets) packets; "
                + "gaps \(s.gaps) (\(s.gapBytes) bytes), unrecognised bytes \(s.unrecognisedBytes)\n")
    }
}

private final class PrintingSink: DissectionSink {
    let format: DissectCommand.Format
    let database: CallsDatabase?
    private var batch: [Call] = []
    /// Output is gathered and written 64 KiB at a time: a write per call would cost more than dissecting it.
    private var output: [UInt8] = []
    private var wroteHeader = false

    init(format: DissectCommand.Format, database: CallsDatabase?) {
        self.format = format
        self.database = database
    }

    func emit(call: consuming Call) {
        if database != nil {
            batch.append(call)
            if batch.count >= 1000 { try? flush() }
            return
        }
        switch format {
        case .jsonl:
            call.appendCompactJSON(to: &output)
            output.append(UInt8(ascii: "\n"))
            if output.count >= 64 << 10 { writeOutput() }
        case .table:
            if !wroteHeader {
                print("TIME                     PROTO  METHOD   STATUS  LATENCY_MS  SRC                    DST                    PATH")
                wroteHeader = true
            }
            let time = Date(timeIntervalSince1970: Double(call.ts) / 1000).ISO8601Format(.iso8601.time(includingFractionalSeconds: true))
            print([time.padding(24), call.proto.padding(6), call.method.padding(8), String(call.status).padding(7),
                   String(format: "%10.3f", call.latencyMs), "\(call.src.ip):\(call.src.port)".padding(22),
                   "\(call.dst.ip):\(call.dst.port)".padding(22), call.path + (call.query.isEmpty ? "" : "?" + call.query)]
                .joined(separator: " "))
        }
    }

    func emit(flow: Flow) {}

    private func flush() throws {
        guard let database, !batch.isEmpty else { return }
        try database.insert(batch)
        batch.removeAll(keepingCapacity: true)
    }

    private func writeOutput() {
        FileHandle.standardOutput.write(Data(output))
        output.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        try flush()
        writeOutput()
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
