import Foundation

/// A directory under /tmp removed when the test ends.
final class TemporaryDirectory {
    let path = NSTemporaryDirectory() + "/fathom-agent-test-\(UUID().uuidString)"
    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
