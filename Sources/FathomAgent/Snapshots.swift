import FathomAttribution
import FathomCapture
import FathomKFL
import FathomModel
import FathomPcapCapture
import FathomRecording
import FathomStore
import Foundation
import Logging

/// Snapshots, their delayed dissections and their export, as the API serves them.
final class Snapshots: Sendable {
    let store: SnapshotStore
    let dissections: SnapshotDissections
    /// The live attributor: its tables are saved with each snapshot, and name exports of snapshots saved without.
    private let attributor: Attributor

    private let logger: Logger

    init(store: SnapshotStore, dissections: SnapshotDissections, attributor: Attributor, logger: Logger) {
        self.store = store
        self.dissections = dissections
        self.attributor = attributor
        self.logger = logger
    }

    /// `POST /mcp/snapshots`: `duration` (the last so long) or `start`/`end` (ms).
    struct CreateRequest: Decodable, Sendable {
        var name: String?
        var duration: String?
        var start: Int64?
        var end: Int64?
    }

    func create(_ request: CreateRequest, nowNanoseconds now: UInt64) throws -> SnapshotManifest {
        guard let name = request.name else { throw APIError.badArgument("`name` is required") }
        let start: UInt64, end: UInt64
        switch (request.duration, request.start, request.end) {
        case (let text?, nil, nil):
            guard let length = Self.parseDuration(text) else {
                throw APIError.badArgument("`duration` must look like `1h`, `30m`, `90s`, `500ms` or `1h30m`, not `\(text.prefix(40))`")
            }
            end = now
            start = now > length ? now - length : 0
        case (nil, let from?, let to?):
            guard from >= 0, to >= from else { throw APIError.badArgument("need 0 ≤ `start` ≤ `end` (ms since the epoch)") }
            start = UInt64(from) * 1_000_000
            end = UInt64(to) * 1_000_000 + 999_999
        default:
            throw APIError.badArgument("give either `duration` (e.g. \"1h\") or both `start` and `end` (ms since the epoch)")
        }
        let manifest: SnapshotManifest
        do {
            manifest = try store.create(name: name, startNanoseconds: start, endNanoseconds: end, nowNanoseconds: now)
        } catch {
            throw Self.apiError(error)
        }
        let saved = attributor.saved(fromMs: Int64(start / 1_000_000), untilMs: Int64(end / 1_000_000))
        do {
            try JSONEncoder().encode(saved).write(to: URL(fileURLWithPath: Self.attributionPath(store, name)))
        } catch {
            // The packets are still worth having: exports and dissections fall back to the live tables.
            logger.warning("snapshot \(name): cannot save its attribution tables: \(error)")
        }
        return manifest
    }

    /// Where a snapshot keeps the attribution tables of its window (pods, services and IPs, processes and socket
    /// owners, DNS names, cgroup paths) so that it is named later as it was live: after pods are deleted, processes
    /// have exited or the agent restarted.
    static func attributionPath(_ store: SnapshotStore, _ name: String) -> String {
        store.directory(of: name) + "/attribution.json"
    }

    /// The attributor of a snapshot: from its saved tables, else (saved by an older agent, or unreadable) the live one.
    static func attributor(of name: String, in store: SnapshotStore, live: Attributor) -> Attributor {
        guard let data = FileManager.default.contents(atPath: attributionPath(store, name)),
            let saved = try? JSONDecoder().decode(SavedAttribution.self, from: data)
        else { return live }
        return Attributor(restoring: saved)
    }

    func manifest(_ name: String) throws -> SnapshotManifest {
        guard let manifest = store.manifest(name) else { throw APIError.notFound("no snapshot named `\(name)`") }
        return manifest
    }

    /// Removes a snapshot, stopping its dissections first.
    func delete(_ name: String) throws {
        _ = try manifest(name)
        dissections.forgetAll(snapshot: name)
        do {
            try store.delete(name)
        } catch {
            throw Self.apiError(error)
        }
    }

    /// An export of `name` narrowed as asked. `kfl` needs a dissection of the snapshot: `dissection`, or the most
    /// recently started completed one.
    func export(_ name: String, startMs: Int64?, endMs: Int64?, bpf: String?, kfl: String?, dissection: String?)
        throws -> SnapshotExport
    {
        let files: [String]
        do {
            files = try store.packetFiles(name)
        } catch {
            throw Self.apiError(error)
        }
        var narrowing = SnapshotExport.Narrowing()
        if let startMs { narrowing.startNanoseconds = UInt64(max(0, startMs)) * 1_000_000 }
        if let endMs { narrowing.endNanoseconds = UInt64(max(0, endMs)) * 1_000_000 + 999_999 }
        if let bpf, !bpf.isEmpty {
            do {
                narrowing.filter = try PacketFilter(expression: bpf, checkingWith: LinkType.rawIP)
            } catch {
                throw APIError.badArgument(error.description)
            }
        }
        if let kfl, !kfl.isEmpty {
            narrowing.connections = try connections(of: name, kfl: kfl, dissection: dissection)
        }
        return SnapshotExport(files: files, narrowing: narrowing,
                              context: AttributedPacketContext(attributor: Self.attributor(of: name, in: store, live: attributor)))
    }

    /// The connections of the calls `kfl` selects in a dissection of the snapshot.
    private func connections(of snapshot: String, kfl: String, dissection: String?) throws -> Set<ConnectionKey> {
        let chosen: String
        if let dissection, !dissection.isEmpty {
            chosen = dissection
        } else if let latest = dissections.list(snapshot: snapshot).last(where: { $0.state == .completed }) {
            chosen = latest.dissectionName
        } else {
            throw APIError.badArgument(
                "a `kfl` export selects the connections of the calls it matches, so snapshot `\(snapshot)` must be "
                    + "dissected first: POST /delayed_dissection.DelayedDissection/Start")
        }
        let database = try dissections.database(snapshot + "/" + chosen)
        let filter: KFLFilter
        do {
            filter = try KFL.compile(kfl)
        } catch {
            throw APIError.filter(error)
        }
        var keys = Set<ConnectionKey>()
        var cursor: Int64?
        repeat {
            let page = try database.calls(matching: filter, limit: 5000, cursor: cursor, countBudget: 0)
            for call in page.calls {
                keys.insert(ConnectionKey((call.src.ip, call.src.port), (call.dst.ip, call.dst.port)))
            }
            cursor = page.nextCursor
        } while cursor != nil
        return keys
    }

    /// Time ranges of the dissected calls: the real-time database, then each snapshot dissection.
    func l7Boundaries(realTime: CallsDatabase) throws -> L7Boundaries {
        var databases = [try L7Boundaries.Database(db: "", state: "live", database: realTime)]
        for status in dissections.list(snapshot: nil) where status.state != .failed {
            databases.append(try .init(db: status.db, state: status.state.rawValue, database: dissections.database(status.db)))
        }
        return L7Boundaries(databases: databases)
    }

    static func apiError(_ error: SnapshotError) -> APIError {
        error.kind == .notFound ? .notFound(error.description) : .badArgument(error.description)
    }

    /// `1h30m`, `90s`, `500ms`, `2d`: a sum of integer amounts with units; nil when malformed or zero.
    static func parseDuration(_ text: String) -> UInt64? {
        let units: [Substring: UInt64] = ["ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                                          "h": 3_600_000_000_000, "d": 86_400_000_000_000]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var total: UInt64 = 0
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let amount = UInt64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.hasPrefix("ms") ? rest.prefix(2) : rest.prefix(1)
            guard let scale = units[unit] else { return nil }
            rest = rest.dropFirst(unit.count)
            let (product, overflow) = amount.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            total = total &+ product
        }
        return total == 0 ? nil : total
    }
}

/// `GET /mcp/l7-data-boundaries`: which calls databases exist and what time they cover.
struct L7Boundaries: Codable, Sendable {
    struct Database: Codable, Sendable {
        /// "" for the real-time database, else SNAPSHOT/DISSECTION.
        var db: String
        var state: String
        var oldestMs: Int64?
        var newestMs: Int64?
        var count: Int

        init(db: String, state: String, database: CallsDatabase) throws {
            self.db = db
            self.state = state
            let b = try database.boundaries()
            oldestMs = b.oldest
            newestMs = b.newest
            count = b.count
        }
    }

    var databases: [Database]
}

extension Snapshots {
    /// The agent's snapshots under `DATA_DIR/snapshots`, recovered from an earlier run.
    convenience init(
        configuration: AgentConfiguration, catalog: SegmentCatalog, attribution: AgentAttribution, logger: Logger
    ) throws {
        var storeConfiguration = SnapshotStore.Configuration(
            directory: configuration.dataDirectory + "/snapshots", node: configuration.nodeName)
        storeConfiguration.budgetBytes = UInt64(configuration.snapshotBudgetBytes)
        let store = try SnapshotStore(configuration: storeConfiguration, segments: { catalog.segments() })
        self.init(
            store: store,
            dissections: SnapshotDissections(
                snapshots: store, node: configuration.nodeName,
                ownEndpoint: (configuration.listenHost, configuration.listenPort),
                makeAttribution: { snapshot in
                    IngestAttribution(attributor: Self.attributor(of: snapshot, in: store, live: attribution.attributor))
                }, logger: logger),
            attributor: attribution.attributor, logger: logger)
    }

    /// Stops creations and dissections under way (the next start marks them failed as interrupted).
    func close() {
        dissections.close()
        store.close()
    }
}
