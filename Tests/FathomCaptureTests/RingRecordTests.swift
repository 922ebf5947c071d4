import FathomModel
import XCTest

@testable import FathomCapture

final class RingRecordTests: XCTestCase {
    /// The layout of `struct fathom_packet_header` as the BPF programs write it (little-endian, x86_64).
    private func record(
        timestamp: UInt64 = 1_000, cgroup: UInt64 = 77, cookie: UInt64 = 99, ifindex: UInt32 = 3,
        original: UInt32, captured: UInt32, linkType: UInt16 = 101, kind: UInt8 = 1, direction: UInt8 = 2,
        payload: [UInt8], padding: Int = 0
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        put(timestamp); put(cgroup); put(cookie); put(ifindex); put(original); put(captured); put(linkType)
        bytes.append(kind)
        bytes.append(direction)
        return bytes + payload + [UInt8](repeating: 0xEE, count: padding)
    }

    func testHeaderIsFortyBytes() {
        XCTAssertEqual(RingRecord.headerSize, 40)
    }

    func testDecodesMetadataAndStopsAtCapturedLengthNotRecordSize() throws {
        // Records are reserved in size classes: bytes past captured_length are padding, not packet.
        let bytes = record(original: 1500, captured: 5, payload: [1, 2, 3, 4, 5], padding: 59)
        try bytes.withUnsafeBytes { raw in
            let (metadata, packet) = try XCTUnwrap(RingRecord.decode(raw, clockOffsetNanoseconds: 5_000))
            XCTAssertEqual(Array(packet), [1, 2, 3, 4, 5])
            XCTAssertEqual(metadata.timestampNanoseconds, 6_000)
            XCTAssertEqual(metadata.cgroupID, 77)
            XCTAssertEqual(metadata.socketCookie, 99)
            XCTAssertEqual(metadata.interfaceIndex, 3)
            XCTAssertEqual(metadata.originalLength, 1500)
            XCTAssertEqual(metadata.linkType, LinkType.rawIP)
            XCTAssertEqual(metadata.direction, .outbound)
            XCTAssertEqual(metadata.source, .ebpf)
        }
    }

    func testIngressDirection() throws {
        let bytes = record(original: 1, captured: 1, direction: 1, payload: [9])
        try bytes.withUnsafeBytes { raw in
            XCTAssertEqual(try XCTUnwrap(RingRecord.decode(raw, clockOffsetNanoseconds: 0)).0.direction, .inbound)
        }
    }

    func testRejectsMalformedRecords() {
        let short = [UInt8](repeating: 0, count: 39)
        short.withUnsafeBytes { XCTAssertNil(RingRecord.decode($0, clockOffsetNanoseconds: 0)) }
        // captured_length says more than the record holds.
        record(original: 100, captured: 100, payload: [1, 2, 3]).withUnsafeBytes {
            XCTAssertNil(RingRecord.decode($0, clockOffsetNanoseconds: 0))
        }
        // An unknown record kind.
        record(original: 1, captured: 1, kind: 9, payload: [1]).withUnsafeBytes {
            XCTAssertNil(RingRecord.decode($0, clockOffsetNanoseconds: 0))
        }
    }
}
