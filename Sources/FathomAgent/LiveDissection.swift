import FathomDissect
import FathomModel
import FathomRecording
import FathomStore
import Foundation
import Logging
import Synchronization

/// Real-time dissection: follows the recording as it is written and dissects it into the real-time calls
/// database. It reads the recording's own bytes — handed over from memory right after each write (`LiveFeed`), or
/// read back from the segment file for whatever the bounded feed had to leave out — so capture never waits for
/// dissection, live and delayed dissection read the same bytes, and a dissector that falls behind catches up from
/// disk (or, past the retention budget, counts the segments it lost) instead of dropping packets.
final class LiveDissection: MetricsSource, @unchecked Sendable {
    private let catalog: SegmentCatalog
    private let recording: RecordingStatistics
    /// Stores what the engine emits, on a thread of its own.
    private let writer: CallsWriter
    private let logger: Logger
    private let engine: DissectionEngine
    private let collector: Collector
    /// The recording's writes, from memory; install it as the segment store's tap.
    let feed: LiveFeed
    private let condition = NSCondition()
    private var state: State = .idle
    private let enabled = Atomic<Bool>(true)
    let counters = Counters()
    /// The engine's statistics as of the dissection thread's last pass.
    private let engineStatistics = Mutex(DissectionStatistics())
    // The dissection thread's own.
    private var reader: PacketFileReader?
    private var readingSequence: UInt64 = 0
    /// The next segment to read; segments before it were read or belong to an earlier run.
    private var nextSequence: UInt64
    /// Whether segments are read back with direct I/O (the recording writes them so: they are not in the page cache).
    private let readsDirectly: Bool

    private enum State { case idle, running, stopping, stopped }

    /// Open flows are stored again after this much activity, so long-lived connections show while they last.
    static let openFlowUpdateNanoseconds: UInt64 = 10_000_000_000

    final class Counters: Sendable {
        let flowsSeen = Atomic<UInt64>(0)
        let packetsRead = Atomic<UInt64>(0)
        let segmentsRead = Atomic<UInt64>(0)
        /// Buffers of the feed found to start past what was read: the gap was read back from the file.
        let feedGaps = Atomic<UInt64>(0)
        /// Segments retention deleted before dissection reached them.
        let segmentsMissed = Atomic<UInt64>(0)
        let unreadableSegments = Atomic<UInt64>(0)
        /// Calls to the agent's own API, left out of the database.
        let ownCalls = Atomic<UInt64>(0)
        /// Time of the newest packet dissected, ns.
        let position = Atomic<UInt64>(0)
    }

    /// `ownEndpoint` is the agent's listen address: calls to it are the agent's own API traffic, not the node's.
    /// The feed holds `feedBuffers` writes of the recording (32 MiB by default) before dissection reads from the files.
    init(
        catalog: SegmentCatalog, recording: RecordingStatistics, calls: CallsDatabase, node: String,
        ownEndpoint: (host: String, port: Int), attribution: IngestAttribution? = nil,
        feedBufferBytes: Int = PcapngWriter.defaultBufferCapacity, feedBuffers: Int = 16, readsDirectly: Bool = false,
        logger: Logger
    ) {
        self.catalog = catalog
        self.readsDirectly = readsDirectly
        self.recording = recording
        writer = CallsWriter(calls: calls, logger: logger)
        self.logger = logger
        // Calls of this run get ids that no earlier run used: the run's start time in base 36 is part of them.
        let run = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)
        collector = Collector(ownEndpoint: ownEndpoint, attribution: attribution)
        var dissection = DissectionConfiguration()
        dissection.openFlowUpdateNanoseconds = Self.openFlowUpdateNanoseconds
        engine = DissectionEngine(
            dissection, node: node, idPrefix: "\(node)-\(run)", sink: collector, packetObserver: attribution)
        let condition = condition
        feed = LiveFeed(bufferBytes: feedBufferBytes, bufferCount: feedBuffers) {
            condition.lock()
            condition.signal()
            condition.unlock()
        }
        nextSequence = (catalog.segments().map(\.sequence).max() ?? 0) + (catalog.segments().isEmpty ? 0 : 1)
    }

    var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Turning dissection off stops reading; turning it on again resumes with what is recorded from then on.
    func setEnabled(_ on: Bool) {
        enabled.store(on, ordering: .relaxed)
        feed.enabled.store(on, ordering: .relaxed)
    }

    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard state == .idle else { return }
        state = .running
        writer.start()
        let thread = Thread { [self] in run() }
        thread.name = "fathom-dissect"
        thread.start()
    }

    /// Reads what the recording holds so far, flushes the engine and the database, then returns.
    func stop() {
        condition.lock()
        if state == .running {
            state = .stopping
            condition.broadcast()
            while state != .stopped { condition.wait() }
        }
        condition.unlock()
    }

    private func run() {
        var lastSweep = DispatchTime.now().uptimeNanoseconds
        var lastRetention = lastSweep
        while true {
            condition.lock()
            let stopping = state == .stopping
            condition.unlock()
            var busy = false
            let chunks = feed.take()
            if isEnabled {
                // From memory while the feed keeps up; from the file when it had to leave bytes out, when idle
                // (the feed may have left out the last write) and at the end.
                let fedEverything = readFed(chunks)
                if !fedEverything || chunks.isEmpty || stopping {
                    busy = readAvailable(budget: stopping ? Int.max : 50_000)
                }
            } else {
                for chunk in chunks { feed.recycle(chunk) }
                skipToNewest()
            }
            let now = DispatchTime.now().uptimeNanoseconds
            if now - lastSweep > 1_000_000_000 || stopping {
                engine.flush(nowNanoseconds: UInt64(Date().timeIntervalSince1970 * 1e9))
                lastSweep = now
            }
            if stopping { engine.finish() }
            let statistics = engine.statistics
            engineStatistics.withLock { $0 = statistics }
            store()
            if now - lastRetention > 10_000_000_000 {
                applyRetention()
                lastRetention = now
            }
            if stopping {
                writer.finish()
                break
            }
            if !busy && chunks.isEmpty {
                condition.lock()
                if state == .running { _ = condition.wait(until: Date().addingTimeInterval(0.1)) }
                condition.unlock()
            }
        }
        condition.lock()
        state = .stopped
        condition.broadcast()
        condition.unlock()
    }

    /// Dissects up to `budget` packets; true when it stopped because of the budget (more is waiting).
    private func readAvailable(budget: Int) -> Bool {
        var remaining = budget
        while remaining > 0 {
            if reader == nil && !openNextSegment() { return false }
            guard let current = reader else { return false }
            do {
                remaining -= try dissectAll(current, limit: remaining)
            } catch {
                skipUnreadable(readingSequence, error)
                finishSegment()
                continue
            }
            if remaining == 0 { return true }
            // At the end of what is written: a segment no longer open will not grow, so move on.
            if isOpen(readingSequence) {
                current.resumeAtEnd()
                return false
            }
            current.resumeAtEnd()
            do {
                _ = try dissectAll(current, limit: .max)
            } catch {
                skipUnreadable(readingSequence, error)
            }
            finishSegment()
        }
        return true
    }

    /// Dissects up to `limit` packets from `reader`; returns how many. Counters are published once per call.
    private func dissectAll(_ reader: PacketFileReader, limit: Int) throws(PacketFileError) -> Int {
        var done = 0
        var newest: UInt64 = 0
        defer {
            if done > 0 {
                counters.packetsRead.add(UInt64(done), ordering: .relaxed)
                counters.position.store(newest, ordering: .relaxed)
            }
        }
        while done < limit, let record = try reader.next() {
            engine.process(record.metadata, record.bytes)
            newest = record.metadata.timestampNanoseconds
            done += 1
            if collector.isFull { store() }
        }
        return done
    }

    /// Dissects the feed's chunks, moving on to later segments as they show up (an earlier segment is then closed
    /// and is read to its end from the file first). False when some bytes were not in the chunks (the feed left
    /// them out): the file must be read.
    private func readFed(_ chunks: [LiveFeed.Chunk]) -> Bool {
        var complete = true
        for chunk in chunks {
            defer { feed.recycle(chunk) }
            while reader == nil || readingSequence < chunk.sequence {
                if let current = reader {
                    current.resumeAtEnd()
                    do { _ = try dissectAll(current, limit: .max) } catch {
                        skipUnreadable(readingSequence, error)
                    }
                    finishSegment()
                }
                guard nextSequence <= chunk.sequence, openNextSegment(atMost: chunk) else { break }
            }
            guard let current = reader, readingSequence == chunk.sequence else { continue }  // read from the file already
            guard current.supply(chunk.bytes, at: chunk.offset) else {
                counters.feedGaps.add(1, ordering: .relaxed)
                current.resumeAtEnd()
                complete = false
                continue
            }
            do { _ = try dissectAll(current, limit: .max) } catch {
                skipUnreadable(readingSequence, error)
                finishSegment()
            }
        }
        return complete
    }

    /// Opens the oldest unread segment; with `chunk`, one no later than the chunk's, which may not be listed yet.
    private func openNextSegment(atMost chunk: LiveFeed.Chunk? = nil) -> Bool {
        let listed = catalog.segments().filter { $0.sequence >= nextSequence }.min { $0.sequence < $1.sequence }
        let next: (sequence: UInt64, path: String)
        if let listed, chunk.map({ listed.sequence <= $0.sequence }) ?? true {
            next = (listed.sequence, listed.path)
        } else if let chunk {
            next = (chunk.sequence, chunk.path)
        } else {
            return false
        }
        let opened: PacketFileReader
        do {
            opened = try PacketFileReader(path: next.path)
        } catch {
            // Deleted by retention between the listing and the open, or unreadable: count it and go on.
            noteMissed(upTo: next.sequence)
            skipUnreadable(next.sequence, error)
            nextSequence = next.sequence + 1
            return true  // nothing to read there; the caller moves on
        }
        if readsDirectly { opened.readDirectly() }
        noteMissed(upTo: next.sequence)
        reader = opened
        readingSequence = next.sequence
        nextSequence = next.sequence + 1
        return true
    }

    /// Segments before `sequence` not read yet are gone (retention deleted them first).
    private func noteMissed(upTo sequence: UInt64) {
        if sequence > nextSequence { counters.segmentsMissed.add(sequence - nextSequence, ordering: .relaxed) }
    }

    /// Whether the recording is still writing segment `sequence`. One the catalog does not list is open if nothing
    /// later is listed (opened from the feed before the catalog was next published), else it was deleted.
    private func isOpen(_ sequence: UInt64) -> Bool {
        let segments = catalog.segments()
        return segments.first { $0.sequence == sequence }?.isOpen ?? !segments.contains { $0.sequence > sequence }
    }

    private func skipUnreadable(_ sequence: UInt64, _ error: any Error) {
        logger.warning("live dissection skips the rest of segment \(sequence): \(error)")
        counters.unreadableSegments.add(1, ordering: .relaxed)
    }

    private func finishSegment() {
        reader = nil
        counters.segmentsRead.add(1, ordering: .relaxed)
    }

    /// While disabled, nothing is read; on enabling, dissection starts at the segment being written then.
    private func skipToNewest() {
        reader = nil
        if let newest = catalog.segments().map(\.sequence).max() { nextSequence = max(nextSequence, newest) }
    }

    private func store() {
        let (batch, flows, own) = collector.take()
        counters.flowsSeen.add(UInt64(flows.count), ordering: .relaxed)
        counters.ownCalls.add(UInt64(own), ordering: .relaxed)
        writer.enqueue(calls: batch, flows: flows)
    }

    /// Calls live as long as the packets they came from: retention follows the recording's budget.
    private func applyRetention() {
        let oldest = recording.snapshot().oldestPacketNanoseconds
        guard oldest > 0 else { return }
        writer.deleteOlder(thanMilliseconds: Int64(oldest / 1_000_000))
    }

    func metrics() -> [Metric] {
        [
            Metric("fathom_dissection_enabled", .gauge, "1 while live dissection runs.", value: isEnabled ? 1 : 0),
            Metric("fathom_dissection_calls_stored_total", .counter, "Calls written to the real-time database.",
                   value: Double(writer.callsStored.load(ordering: .relaxed))),
            Metric("fathom_dissection_packets_total", .counter, "Packets of the recording dissected.",
                   value: Double(counters.packetsRead.load(ordering: .relaxed))),
            Metric("fathom_dissection_fed_bytes_total", .counter,
                   "Recording bytes handed to live dissection from memory as they were written.",
                   value: Double(feed.bytesFed.load(ordering: .relaxed))),
            Metric("fathom_dissection_feed_overflows_total", .counter,
                   "Recording writes not handed over from memory (dissection behind): read back from the file instead.",
                   value: Double(feed.overflows.load(ordering: .relaxed))),
            Metric("fathom_dissection_feed_gaps_total", .counter,
                   "Times live dissection found bytes missing from the feed and read them back from the recording.",
                   value: Double(counters.feedGaps.load(ordering: .relaxed))),
            Metric("fathom_dissection_segments_missed_total", .counter,
                   "Segments deleted by retention before live dissection reached them.",
                   value: Double(counters.segmentsMissed.load(ordering: .relaxed))),
            Metric("fathom_dissection_unreadable_segments_total", .counter, "Segments that could not be read to their end.",
                   value: Double(counters.unreadableSegments.load(ordering: .relaxed))),
            Metric("fathom_dissection_store_errors_total", .counter, "Failed transactions on the calls database: batches of calls (lost) and retention deletions (retried).",
                   value: Double(writer.storeErrors.load(ordering: .relaxed))),
            Metric("fathom_dissection_calls_lost_total", .counter, "Calls dissected but lost with a failed batch.",
                   value: Double(writer.callsLost.load(ordering: .relaxed))),
            Metric("fathom_dissection_own_api_calls_total", .counter, "Calls to this agent's own API, not stored.",
                   value: Double(counters.ownCalls.load(ordering: .relaxed))),
            Metric("fathom_dissection_lag_seconds", .gauge, "Newest recorded packet time minus newest dissected packet time.",
                   value: lagSeconds),
        ] + engineStatistics.withLock { $0 }.metrics
    }

    var lagSeconds: Double {
        let newest = recording.snapshot().newestPacketNanoseconds
        let position = counters.position.load(ordering: .relaxed)
        return newest > position && position > 0 ? Double(newest - position) / 1e9 : 0
    }
}

/// Gathers what the engine emits on the dissection thread (live or delayed); the same thread takes it in batches.
final class Collector: DissectionSink {
    private let ownEndpoint: (host: String, port: Int)
    /// Names both ends of each call before it is stored; nil in tests without attribution.
    let attribution: IngestAttribution?
    /// Calls since the last batch, at most `batchLimit` once the owner checks `isFull` after each packet.
    private var pending: [Call] = []
    /// The newest record of each flow since the last batch, in first-seen order.
    private var flows: [Flow] = []
    private var flowIndex: [String: Int] = [:]
    private var own = 0

    init(ownEndpoint: (host: String, port: Int), attribution: IngestAttribution?) {
        self.ownEndpoint = ownEndpoint
        self.attribution = attribution
    }

    func emit(call: consuming Call) {
        if call.dst.port == ownEndpoint.port
            && (call.dst.ip == ownEndpoint.host || ["0.0.0.0", "::"].contains(ownEndpoint.host))
        {
            own += 1
            return
        }
        attribution?.attribute(&call)
        pending.append(call)
    }

    func emit(flow: Flow) {
        if flow.dst.port == ownEndpoint.port && (flow.dst.ip == ownEndpoint.host || ["0.0.0.0", "::"].contains(ownEndpoint.host)) {
            return
        }
        var flow = flow
        attribution?.attribute(&flow)
        if let index = flowIndex[flow.id] {
            flows[index] = flow
        } else {
            flowIndex[flow.id] = flows.count
            flows.append(flow)
        }
    }

    func learned(name: String, for ip: String) { attribution?.learned(name: name, for: ip) }

    /// Calls a batch holds at most: catching up, one pass of the dissection loop finds tens of thousands of calls,
    /// and holding them all (with their body previews) cost hundreds of megabytes.
    static let batchLimit = 1_000

    var isFull: Bool { pending.count >= Self.batchLimit }

    func take() -> (calls: [Call], flows: [Flow], own: Int) {
        defer {
            // Not keeping capacity: the batch goes on holding this buffer, so keeping it would allocate another of
            // the same size for every batch, however few calls it then holds.
            pending = []
            flows = []
            flowIndex.removeAll(keepingCapacity: true)
            own = 0
        }
        return (pending, flows, own)
    }
}
