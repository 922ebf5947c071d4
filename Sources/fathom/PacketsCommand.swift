import ArgumentParser
import FathomModel
import FathomRecording
import Foundation

/// Prints the packets of recordings or captures as JSON lines: metadata as recorded, and the bytes on request.
struct PacketsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "packets", abstract: "List the packets of pcap/pcapng files (the agent's segments included) as JSON lines.")

    @Argument(help: "pcap or pcapng files.") var files: [String]
    @Flag(help: "Include each packet's captured bytes, hex-encoded.") var payload = false

    func run() throws {
        var out = FileHandle.standardOutput
        var line = ""
        for file in files {
            let reader: PacketFileReader
            do {
                reader = try PacketFileReader(path: file)
            } catch {
                throw CommandFailure("\(file): \(error)")
            }
            while let packet = try Self.next(reader, file) {
                let m = packet.metadata
                line = "{\"file\":\(jsonString(file)),\"offset\":\(packet.fileOffset),\"timestamp_ns\":\(m.timestampNanoseconds)"
                line += ",\"source\":\"\(m.source.rawValue)\",\"direction\":\"\(m.direction)\",\"link_type\":\(m.linkType)"
                line += ",\"ifindex\":\(m.interfaceIndex),\"cgroup_id\":\(m.cgroupID),\"socket_cookie\":\(m.socketCookie)"
                if m.processID != 0 { line += ",\"pid\":\(m.processID)" }
                line += ",\"length\":\(m.originalLength),\"captured\":\(packet.bytes.count)"
                if payload { line += ",\"bytes\":\"\(hex(packet.bytes))\"" }
                line += "}\n"
                out.write(line)
            }
            if let torn = reader.tornTail {
                FileHandle.standardError.write("\(file): \(torn)\n")
            }
        }
    }

    private static func next(_ reader: PacketFileReader, _ file: String) throws -> PacketRecord? {
        do {
            return try reader.next()
        } catch {
            throw CommandFailure("\(file): \(error)")
        }
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hex(_ bytes: UnsafeRawBufferPointer) -> String {
    String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        for (i, byte) in bytes.enumerated() {
            buffer[2 * i] = hexDigits[Int(byte >> 4)]
            buffer[2 * i + 1] = hexDigits[Int(byte & 0xf)]
        }
        return bytes.count * 2
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

extension FileHandle {
    func write(_ string: String) { write(Data(string.utf8)) }
}
