import Foundation
import XCTest

/// tshark as the oracle: runs it on a file and returns its field rows.
enum Tshark {
    /// Skips the test when tshark is missing, except under CI=true where that is a failure.
    static func require() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("tshark is required (apt-get install tshark)")
            }
            throw XCTSkip("tshark not installed")
        }
    }

    /// Rows of `-T fields` output for `fields`, filtered by `filter`, with `decodeAs` rules ("tcp.port==18080,http").
    static func fields(_ file: URL, filter: String, fields: [String], decodeAs: [String] = [], extra: [String] = []) throws -> [[String]] {
        var arguments = ["-r", file.path, "-n", "-Y", filter, "-T", "fields", "-E", "separator=\t", "-E", "aggregator=,"]
        for rule in decodeAs { arguments += ["-d", rule] }
        arguments += extra
        for field in fields { arguments += ["-e", field] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
    }
}
