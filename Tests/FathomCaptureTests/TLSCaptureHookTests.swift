import FathomModel
import Foundation
import Logging
import XCTest

@testable import FathomCapture

/// Attaching a file's probes: a function is hooked with all its probes or not at all.
final class TLSCaptureHookTests: XCTestCase {
    private final class DiscardingSink: PacketSink {
        func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {}
        func tick(nowNanoseconds: UInt64) {}
    }

    /// A function whose second probe fails keeps none: the first probe's link is destroyed, once. It was destroyed
    /// once per probe of the function, a double free that crashed the agent when a process exited between two probes
    /// of one function (the second attach then failed on the vanished /proc/PID/root path).
    func testAFunctionWhoseLaterProbeFailsIsDetachedOnce() throws {
        guard geteuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { return XCTFail("CI runs the tests as root") }
            throw XCTSkip("attaching uprobes needs root")
        }
        let logger = Logger(label: "test")
        let capture = try BPFCapture(configuration: BPFCaptureConfiguration(), logger: logger)
        try capture.start(sink: DiscardingSink())
        defer { capture.stop() }
        var configuration = TLSCaptureConfiguration()
        configuration.discover = false
        let tls = try TLSCapture(sharing: capture, configuration: configuration, logger: logger)
        try tls.start()
        defer { tls.stop() }

        let standIn: @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int32) -> Int32 = { _, _, length in length }
        let address = UInt64(UInt(bitPattern: unsafeBitCast(standIn, to: UnsafeRawPointer.self)))
        let probes = [
            TLSProbe(function: "SSL_read", fileOffset: address, program: "tls_ssl_read"),
            TLSProbe(function: "SSL_read", fileOffset: address, program: "tls_ssl_read_return", returnProbe: true),
            TLSProbe(function: "SSL_read", fileOffset: address, program: "no_such_program"),
        ]
        XCTAssertThrowsError(try tls.hookOwnCode(probes)) { error in
            XCTAssertTrue("\(error)".contains("no_such_program"), "\(error)")
        }
        // Nothing of the failed attempt stays recorded: the file is hooked by the next attempt that can be.
        XCTAssertEqual(try tls.hookOwnCode(Array(probes.prefix(2))), ["SSL_read"])
    }
}
