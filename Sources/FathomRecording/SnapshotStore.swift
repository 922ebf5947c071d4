import FathomModel
import Foundation
import Synchronization

/// Snapshots: time windows of the recording kept under `DIRECTORY/NAME/` (a `manifest.json` and a `packets`
/// directory of pcapng files) apart from the recording, so retention never deletes them. Snapshots share a disk
/// budget of their own. Creating one returns at once; the packets are copied on a background thread, which reads
/// the segment files and never touches the capture thread.
///
/// A refused request (bad or duplicate name, empty window, over budget) writes nothing. After a restart, completed
/// snapshots are kept and ones left in progress are marked failed with the reason (their partial packets removed).
/// Thread-safe.
public final class SnapshotStore: Sendable {
    /// Where snapshots go and how much they may take.
    public struct Configuration: Sendable {
        /// `DATA_DIR/snapshots`.
        public var directory: String
        /// All snapshots' packet files together stay under this.
        public var budgetBytes: UInt64 = 4 << 30
        /// The node named in manifests.
        public var node: String
        /// When a window ends this close to now, creation first waits this long, so packets still in the
        /// recording's write buffer (flushed every 100 ms) reach its files.
        public var settleNanoseconds: UInt64 = 300_000_000

        public init(directory: String, node: String) {
            self.directory = directory
            self.node = node
        }
    }

    /// A creation under way, which deletion and shutdown can cancel and wait for.
    private final class Job: Sendable {
        let cancelled = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
    }

    private struct State {
        var manifests: [String: SnapshotManifest] = [:]
        var jobs: [String: Job] = [:]
    }

    public let configuration: Configuration
    private let segments: @Sendable () -> [SegmentInfo]
    private let state = Mutex(State())

    /// The reason given to snapshots a restart interrupted.
    public static let interruptedReason = "interrupted: the agent stopped before the snapshot was complete"

    /// Opens (creating) the directory and recovers the snapshots in it. `segments` lists the recording.
    public init(configuration: Configuration, segments: @escaping @Sendable () -> [SegmentInfo]) throws(SnapshotError) {
        self.configuration = configuration
        self.segments = segments
        let code = POSIX.makeDirectories(configuration.directory)
        guard code == 0 else {
            throw SnapshotError(.io, "cannot create \(configuration.directory): \(POSIX.describe(errno: code))")
        }
        var manifests: [String: SnapshotManifest] = [:]
        for name in POSIX.listDirectory(configuration.directory).names where SnapshotName.problem(name) == nil {
            let directory = configuration.directory + "/" + name
            let manifestPath = directory + "/manifest.json"
            guard FileManager.default.fileExists(atPath: manifestPath) else {
                // Created but never described (a crash right after mkdir): nothing worth keeping.
                try? FileManager.default.removeItem(atPath: directory)
                continue
            }
            guard var manifest = SnapshotManifest.read(from: manifestPath) else {
                // Kept for the user to look at or delete, never read as packets.
                var unreadable = SnapshotManifest(name: name, startNanoseconds: 0, endNanoseconds: 0, createdMs: 0, nodes: [])
                unreadable.status = .failed
                unreadable.reason = "the snapshot's manifest.json cannot be read"
                manifests[name] = unreadable
                continue
            }
            if manifest.status == .inProgress {
                try? FileManager.default.removeItem(atPath: directory + "/packets")
                manifest.status = .failed
                manifest.reason = Self.interruptedReason
                manifest.files = []
                manifest.bytes = 0
                manifest.packets = 0
                try? manifest.write(to: directory + "/manifest.json")
            }
            manifests[name] = manifest
        }
        state.withLock { $0.manifests = manifests }
    }

    /// `DIRECTORY/NAME`.
    public func directory(of name: String) -> String { configuration.directory + "/" + name }

    /// All snapshots, oldest request first.
    public func list() -> [SnapshotManifest] {
        state.withLock { Array($0.manifests.values) }.sorted { ($0.createdMs, $0.name) < ($1.createdMs, $1.name) }
    }

    /// One snapshot's manifest, with the counts so far while in progress.
    public func manifest(_ name: String) -> SnapshotManifest? { state.withLock { $0.manifests[name] } }

    /// Bytes all snapshots hold or have reserved.
    public var usedBytes: UInt64 { state.withLock { $0.manifests.values.reduce(0) { $0 + $1.budgetBytes } } }

    /// The packet files of a completed snapshot, in reading order.
    public func packetFiles(_ name: String) throws(SnapshotError) -> [String] {
        guard let manifest = manifest(name) else { throw SnapshotError(.notFound, "no snapshot named `\(name)`") }
        guard manifest.status == .completed else {
            throw SnapshotError(.notReady, "snapshot `\(name)` is \(manifest.status.rawValue)"
                + (manifest.reason.map { " (\($0))" } ?? "") + "; only a completed snapshot can be read")
        }
        return manifest.files.map { directory(of: name) + "/packets/" + $0 }
    }

    /// Starts isolating the window `start...end` (ns) into a new snapshot and returns its manifest, in progress.
    public func create(name: String, startNanoseconds start: UInt64, endNanoseconds end: UInt64,
                       nowNanoseconds now: UInt64) throws(SnapshotError) -> SnapshotManifest {
        if let problem = SnapshotName.problem(name) { throw SnapshotError(.badName, problem) }
        guard start <= end else { throw SnapshotError(.badWindow, "the window's start is after its end") }
        let recorded = segments()
        guard !SnapshotCutter.overlapping(recorded, start: start, end: end).isEmpty else {
            throw SnapshotError(.emptyWindow, "the recording holds no packets between \(start / 1_000_000) and "
                + "\(end / 1_000_000) ms; see /mcp/data-boundaries for what is recorded")
        }
        let estimate = SnapshotCutter.estimate(recorded, start: start, end: end)
        var manifest = SnapshotManifest(
            name: name, startNanoseconds: start, endNanoseconds: end, createdMs: Int64(now / 1_000_000),
            nodes: [configuration.node])
        manifest.estimatedBytes = estimate
        let job = Job()
        let byteLimit: UInt64 = try state.withLock { (state) throws(SnapshotError) -> UInt64 in
            if state.manifests[name] != nil { throw SnapshotError(.duplicate, "a snapshot named `\(name)` exists") }
            let used = state.manifests.values.reduce(0) { $0 + $1.budgetBytes }
            guard used + estimate <= configuration.budgetBytes else {
                throw SnapshotError(.overBudget, "the window needs about \(estimate) bytes but only "
                    + "\(configuration.budgetBytes - min(used, configuration.budgetBytes)) of the snapshot budget's "
                    + "\(configuration.budgetBytes) are free; delete snapshots or narrow the window")
            }
            state.manifests[name] = manifest
            state.jobs[name] = job
            return configuration.budgetBytes - used
        }
        let directory = directory(of: name)
        do {
            try FileManager.default.createDirectory(atPath: directory + "/packets", withIntermediateDirectories: true)
            try manifest.write(to: directory + "/manifest.json")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            state.withLock {
                $0.manifests[name] = nil
                $0.jobs[name] = nil
            }
            throw SnapshotError(.io, "cannot create \(directory): \(error)")
        }
        let initial = manifest
        let thread = Thread { [self] in
            fill(initial, job: job, byteLimit: byteLimit, now: now)
        }
        thread.name = "fathom-snapshot"
        thread.start()
        return manifest
    }

    /// The background part of `create`: waits for the window's packets to be flushed, cuts, records the outcome.
    private func fill(_ initial: SnapshotManifest, job: Job, byteLimit: UInt64, now: UInt64) {
        defer { job.finished.signal() }
        var manifest = initial
        let name = manifest.name
        if now < configuration.settleNanoseconds || manifest.endNanoseconds > now - configuration.settleNanoseconds {
            Thread.sleep(forTimeInterval: Double(configuration.settleNanoseconds) / 1e9)
        }
        let cutter = SnapshotCutter(
            start: manifest.startNanoseconds, end: manifest.endNanoseconds,
            directory: directory(of: name) + "/packets", byteLimit: byteLimit,
            isCancelled: { job.cancelled.load(ordering: .relaxed) },
            progress: { [self] partial in
                state.withLock { if $0.jobs[name] === job { $0.manifests[name] = partial } }
            })
        do throws(SnapshotError) {
            try cutter.run(segments(), into: &manifest)
            if manifest.packets == 0 {
                throw SnapshotError(.emptyWindow, "no packets were recorded in the window")
            }
            manifest.status = .completed
        } catch {
            try? FileManager.default.removeItem(atPath: directory(of: name) + "/packets")
            manifest.status = .failed
            manifest.reason = error.description
            manifest.files = []
            manifest.bytes = 0
            manifest.packets = 0
        }
        manifest.finishedMs = Int64(Date().timeIntervalSince1970 * 1000)
        if job.cancelled.load(ordering: .relaxed) { return }  // being deleted, or the store is closing
        try? manifest.write(to: directory(of: name) + "/manifest.json")
        state.withLock {
            $0.manifests[name] = manifest
            $0.jobs[name] = nil
        }
    }

    /// Removes a snapshot, first cancelling its creation if under way.
    public func delete(_ name: String) throws(SnapshotError) {
        let job: Job? = try state.withLock { (state) throws(SnapshotError) -> Job? in
            guard state.manifests[name] != nil else { throw SnapshotError(.notFound, "no snapshot named `\(name)`") }
            return state.jobs[name]
        }
        if let job {
            job.cancelled.store(true, ordering: .relaxed)
            job.finished.wait()
        }
        do {
            try FileManager.default.removeItem(atPath: directory(of: name))
        } catch {
            throw SnapshotError(.io, "cannot remove \(directory(of: name)): \(error)")
        }
        state.withLock {
            $0.manifests[name] = nil
            $0.jobs[name] = nil
        }
    }

    /// Cancels creations under way and waits for them; their manifests stay in progress, so the next start marks
    /// them failed as interrupted.
    public func close() {
        let jobs = state.withLock { Array($0.jobs.values) }
        for job in jobs { job.cancelled.store(true, ordering: .relaxed) }
        for job in jobs {
            job.finished.wait()
            job.finished.signal()  // a later delete or close waiting on the same job goes through
        }
    }
}
