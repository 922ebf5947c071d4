import Foundation

/// What a snapshot holds and how far its creation got; kept as `manifest.json` in the snapshot's directory.
public struct SnapshotManifest: Codable, Sendable, Equatable {
    /// Where creation stands.
    public enum Status: String, Codable, Sendable {
        case inProgress = "in_progress"
        case completed
        case failed
    }

    public var name: String
    public var status: Status
    /// Why the snapshot failed.
    public var reason: String?
    /// The window asked for, nanoseconds since the Unix epoch, both ends included.
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    /// The window in milliseconds (the API's unit).
    public var startMs: Int64
    public var endMs: Int64
    /// Wall-clock times of the request and of completion (or failure), ms.
    public var createdMs: Int64
    public var finishedMs: Int64?
    /// Bytes of the snapshot's packet files (so far, while in progress).
    public var bytes: UInt64 = 0
    /// Packets in the snapshot (so far).
    public var packets: UInt64 = 0
    /// Bytes the request was estimated to need when it was accepted (reserved from the budget meanwhile).
    public var estimatedBytes: UInt64 = 0
    /// Nodes whose recording the snapshot holds.
    public var nodes: [String]
    /// The packet files, in reading order, relative to the snapshot's `packets` directory.
    public var files: [String] = []
    /// Whole segments taken in as hard links, and segments cut to the window.
    public var linkedSegments = 0
    public var cutSegments = 0
    /// Segments of the window that retention deleted before they could be read.
    public var missedSegments = 0
    /// Time of the first and last packet held, ns (0 when none).
    public var firstPacketNanoseconds: UInt64 = 0
    public var lastPacketNanoseconds: UInt64 = 0

    public init(name: String, startNanoseconds: UInt64, endNanoseconds: UInt64, createdMs: Int64, nodes: [String]) {
        self.name = name
        status = .inProgress
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = endNanoseconds
        startMs = Int64(startNanoseconds / 1_000_000)
        endMs = Int64(endNanoseconds / 1_000_000)
        self.createdMs = createdMs
        self.nodes = nodes
    }

    /// Bytes the snapshot counts against the budget: what it holds, or while in progress at least its estimate.
    public var budgetBytes: UInt64 { status == .inProgress ? max(bytes, estimatedBytes) : bytes }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// Writes the manifest atomically (temporary file, then rename).
    func write(to path: String) throws {
        try Self.encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads a manifest; nil when the file is missing or unreadable.
    static func read(from path: String) -> SnapshotManifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? decoder.decode(SnapshotManifest.self, from: data)
    }
}

/// Why a snapshot request was refused; nothing was written.
public struct SnapshotError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of refusal, so the API can map them to HTTP statuses.
    public enum Kind: String, Sendable {
        case badName = "bad_name"
        case badWindow = "bad_window"
        case duplicate
        case emptyWindow = "empty_window"
        case overBudget = "over_budget"
        case notFound = "not_found"
        case notReady = "not_ready"
        case io
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
