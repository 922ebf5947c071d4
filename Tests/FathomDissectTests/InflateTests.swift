import XCTest

@testable import FathomDissect

final class InflateTests: XCTestCase {
    /// 120 lines "line N of the inflate test, with some repetition\n", compressed by Python's zlib (level 9).
    private let expected = (0..<120).map { "line \($0) of the inflate test, with some repetition\n" }.joined()
    private let rawDeflate: [UInt8] = [157, 216, 203, 77, 196, 48, 0, 69, 209, 61, 85, 184, 0, 22, 254, 127, 202, 97, 145, 209, 68, 26, 102, 16, 68, 162, 125, 68, 9, 199, 5, 188, 213, 81, 28, 251, 62, 206, 231, 17, 98, 120, 221, 194, 117, 63, 194, 249, 188, 61, 62, 174, 35, 92, 199, 207, 245, 30, 126, 207, 235, 30, 126, 94, 159, 71, 248, 62, 190, 142, 235, 188, 206, 215, 243, 237, 241, 63, 72, 58, 200, 58, 40, 58, 168, 58, 104, 58, 232, 58, 24, 58, 152, 58, 88, 12, 231, 212, 108, 157, 24, 59, 177, 118, 98, 238, 196, 222, 137, 193, 19, 139, 39, 38, 79, 108, 158, 217, 60, 251, 247, 205, 230, 153, 205, 51, 155, 103, 54, 207, 108, 158, 217, 60, 179, 121, 102, 243, 194, 230, 133, 205, 139, 31, 234, 108, 94, 216, 188, 176, 121, 97, 243, 194, 230, 133, 205, 11, 155, 87, 54, 175, 108, 94, 217, 188, 250, 159, 156, 205, 43, 155, 87, 54, 175, 108, 94, 217, 188, 178, 121, 99, 243, 198, 230, 141, 205, 27, 155, 55, 191, 190, 177, 121, 99, 243, 198, 230, 141, 205, 27, 155, 119, 54, 239, 108, 222, 217, 188, 179, 121, 103, 243, 238, 119, 118, 54, 239, 108, 222, 217, 188, 179, 249, 96, 243, 193, 230, 131, 205, 7, 155, 15, 54, 31, 108, 62, 252, 161, 198, 230, 131, 205, 7, 155, 79, 54, 159, 108, 62, 217, 124, 178, 249, 100, 243, 201, 230, 147, 205, 167, 191, 206, 217, 124, 178, 249, 98, 243, 197, 230, 139, 205, 23, 155, 47, 54, 95, 108, 190, 216, 124, 177, 249, 242, 36, 179, 209, 100, 60, 202, 68, 175, 50, 209, 179, 76, 244, 46, 19, 61, 204, 68, 47, 51, 209, 211, 76, 244, 54, 19, 61, 206, 68, 215, 223, 73, 114, 174, 191, 17, 229, 54, 170, 220, 70, 150, 219, 232, 114, 27, 97, 110, 163, 204, 109, 164, 57, 106, 115, 127]
    private let zlibWrapped: [UInt8] = [120, 218, 157, 216, 203, 77, 196, 48, 0, 69, 209, 61, 85, 184, 0, 22, 254, 127, 202, 97, 145, 209, 68, 26, 102, 16, 68, 162, 125, 68, 9, 199, 5, 188, 213, 81, 28, 251, 62, 206, 231, 17, 98, 120, 221, 194, 117, 63, 194, 249, 188, 61, 62, 174, 35, 92, 199, 207, 245, 30, 126, 207, 235, 30, 126, 94, 159, 71, 248, 62, 190, 142, 235, 188, 206, 215, 243, 237, 241, 63, 72, 58, 200, 58, 40, 58, 168, 58, 104, 58, 232, 58, 24, 58, 152, 58, 88, 12, 231, 212, 108, 157, 24, 59, 177, 118, 98, 238, 196, 222, 137, 193, 19, 139, 39, 38, 79, 108, 158, 217, 60, 251, 247, 205, 230, 153, 205, 51, 155, 103, 54, 207, 108, 158, 217, 60, 179, 121, 102, 243, 194, 230, 133, 205, 139, 31, 234, 108, 94, 216, 188, 176, 121, 97, 243, 194, 230, 133, 205, 11, 155, 87, 54, 175, 108, 94, 217, 188, 250, 159, 156, 205, 43, 155, 87, 54, 175, 108, 94, 217, 188, 178, 121, 99, 243, 198, 230, 141, 205, 27, 155, 55, 191, 190, 177, 121, 99, 243, 198, 230, 141, 205, 27, 155, 119, 54, 239, 108, 222, 217, 188, 179, 121, 103, 243, 238, 119, 118, 54, 239, 108, 222, 217, 188, 179, 249, 96, 243, 193, 230, 131, 205, 7, 155, 15, 54, 31, 108, 62, 252, 161, 198, 230, 131, 205, 7, 155, 79, 54, 159, 108, 62, 217, 124, 178, 249, 100, 243, 201, 230, 147, 205, 167, 191, 206, 217, 124, 178, 249, 98, 243, 197, 230, 139, 205, 23, 155, 47, 54, 95, 108, 190, 216, 124, 177, 249, 242, 36, 179, 209, 100, 60, 202, 68, 175, 50, 209, 179, 76, 244, 46, 19, 61, 204, 68, 47, 51, 209, 211, 76, 244, 54, 19, 61, 206, 68, 215, 223, 73, 114, 174, 191, 17, 229, 54, 170, 220, 70, 150, 219, 232, 114, 27, 97, 110, 163, 204, 109, 164, 57, 106, 115, 127, 189, 222, 78, 5]
    /// gzip.compress(b"short gzip body", mtime=0).
    private let gzipped: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 43, 206, 200, 47, 42, 81, 72, 175, 202, 44, 80, 72, 202, 79, 169, 4, 0, 228, 142, 145, 180, 15, 0, 0, 0]

    func testRawZlibAndGzipDecodeToTheOriginal() {
        let raw = rawDeflate.withUnsafeBytes { Inflate.raw($0, limit: 1 << 20) }
        XCTAssertEqual(String(decoding: raw.bytes, as: UTF8.self), expected)
        XCTAssertTrue(raw.complete)
        let wrapped = zlibWrapped.withUnsafeBytes { Inflate.zlibOrRaw($0, limit: 1 << 20) }
        XCTAssertEqual(String(decoding: wrapped.bytes, as: UTF8.self), expected)
        let gunzipped = gzipped.withUnsafeBytes { Inflate.gunzip($0, limit: 1 << 20) }
        XCTAssertEqual(gunzipped.map { String(decoding: $0.bytes, as: UTF8.self) }, "short gzip body")
    }

    func testOutputStopsAtTheLimit() {
        let cut = rawDeflate.withUnsafeBytes { Inflate.raw($0, limit: 100) }
        XCTAssertEqual(cut.bytes.count, 100)
        XCTAssertTrue(cut.cut)
        XCTAssertEqual(String(decoding: cut.bytes, as: UTF8.self), String(expected.prefix(100)))
    }

    func testTruncatedAndCorruptInputGiveAPrefixNotACrash() {
        let truncated = Array(rawDeflate.prefix(rawDeflate.count / 2))
        let partial = truncated.withUnsafeBytes { Inflate.raw($0, limit: 1 << 20) }
        XCTAssertFalse(partial.complete)
        XCTAssertTrue(expected.hasPrefix(String(decoding: partial.bytes, as: UTF8.self)))
        for seed in 0..<200 {
            var corrupt = rawDeflate
            corrupt[(seed * 7919) % corrupt.count] ^= UInt8(truncatingIfNeeded: seed | 1)
            _ = corrupt.withUnsafeBytes { Inflate.raw($0, limit: 1 << 16) }
        }
        XCTAssertNil([UInt8]([1, 2, 3]).withUnsafeBytes { Inflate.gunzip($0, limit: 10) })
    }
}
