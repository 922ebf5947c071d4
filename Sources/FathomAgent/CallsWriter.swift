import FathomModel
import FathomStore
import Foundation
import Logging
import Synchronization

/// Writes what live dissection produces to the calls database on a thread of its own. SQLite stalls now and then (a
/// WAL checkpoint can take most of a second under load); done on the dissection thread, every stall let the
/// recording's in-memory feed overflow and sent dissection back to reading the files. The queue is bounded: when
/// the database falls a whole backlog behind, `enqueue` waits, dissection falls behind the recording and catches up
/// from the files later; nothing is dropped.
///
/// Batches are gathered into one transaction for up to `gatherSeconds` (or until `transactionCalls` are queued):
/// each commit writes every page it touched to the WAL, so at a few thousand calls a second committed as they came,
/// the WAL took ~3 KB a call for calls of a few hundred bytes.
final class CallsWriter: @unchecked Sendable {
    /// What the thread does, in order.
    private enum Job {
        case insert(calls: [Call], flows: [Flow])
        /// Retention: delete calls and flows older than this many ms since the epoch.
        case deleteOlder(thanMilliseconds: Int64)
    }

    /// Calls waiting at most; each carries up to two body previews, so this bounds the queue's memory too.
    static let defaultMaximumQueuedCalls = 5_000
    /// How long the first batch of a transaction waits for others: what live calls lag behind at most for it.
    static let defaultGatherSeconds = 0.1
    /// Calls that make a transaction worth committing without waiting longer. Each commit rewrites the last page of
    /// every index in the WAL: 3,000 calls a commit instead of 1,000 gave ~3% more calls per agent CPU second in
    /// `bench/live_dissect.py`; the queue's bound (and so memory) is unchanged.
    static let transactionCalls = 3_000

    private let calls: CallsDatabase
    private let logger: Logger
    private let maximumQueuedCalls: Int
    private let gatherSeconds: Double
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var queuedCalls = 0
    private var state: State = .idle
    /// Calls written to the database.
    let callsStored = Atomic<UInt64>(0)
    /// Transactions that failed: a batch's calls are lost; a retention deletion is tried again at the next one.
    let storeErrors = Atomic<UInt64>(0)
    /// Calls of the batches that failed.
    let callsLost = Atomic<UInt64>(0)

    private enum State { case idle, running, stopping, stopped }

    init(calls: CallsDatabase, maximumQueuedCalls: Int = CallsWriter.defaultMaximumQueuedCalls,
         gatherSeconds: Double = CallsWriter.defaultGatherSeconds, logger: Logger) {
        self.calls = calls
        self.maximumQueuedCalls = max(maximumQueuedCalls, 1)
        self.gatherSeconds = gatherSeconds
        self.logger = logger
    }

    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard state == .idle else { return }
        state = .running
        let thread = Thread { [self] in run() }
        thread.name = "fathom-calls-writer"
        thread.start()
    }

    /// Queues a batch; waits while the queue is full.
    func enqueue(calls batch: [Call], flows: [Flow]) {
        guard !batch.isEmpty || !flows.isEmpty else { return }
        condition.lock()
        while state == .running && queuedCalls > 0 && queuedCalls + batch.count > maximumQueuedCalls {
            condition.wait()
        }
        jobs.append(.insert(calls: batch, flows: flows))
        queuedCalls += batch.count
        condition.broadcast()
        condition.unlock()
    }

    /// Queues retention: calls and flows older than `milliseconds` are deleted.
    func deleteOlder(thanMilliseconds milliseconds: Int64) {
        condition.lock()
        jobs.append(.deleteOlder(thanMilliseconds: milliseconds))
        condition.broadcast()
        condition.unlock()
    }

    /// Writes everything queued, then stops the thread.
    func finish() {
        condition.lock()
        if state == .running {
            state = .stopping
            condition.broadcast()
            while state != .stopped { condition.wait() }
        }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && state == .running { condition.wait() }
            if jobs.isEmpty {
                state = .stopped
                condition.broadcast()
                condition.unlock()
                return
            }
            let deadline = Date().addingTimeInterval(gatherSeconds)
            while state == .running && queuedCalls < Self.transactionCalls && condition.wait(until: deadline) {}
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            var written = 0
            var gathered: [(calls: [Call], flows: [Flow])] = []
            for job in taken {
                switch job {
                case .insert(let batch, let flows):
                    gathered.append((batch, flows))
                    written += batch.count
                case .deleteOlder(let milliseconds):
                    write(gathered)
                    gathered = []
                    deleteOlder(milliseconds)
                }
            }
            write(gathered)
            condition.lock()
            queuedCalls -= written
            condition.broadcast()
            condition.unlock()
        }
    }

    /// A failed deletion is counted with the failed writes: the database then outgrows the recording's budget until
    /// the next one succeeds.
    private func deleteOlder(_ milliseconds: Int64) {
        do {
            _ = try calls.deleteCalls(olderThan: milliseconds)
            _ = try calls.deleteFlows(olderThan: milliseconds)
        } catch {
            storeErrors.add(1, ordering: .relaxed)
            logger.error("cannot delete calls and flows older than \(milliseconds) ms: \(error)")
        }
    }

    private func write(_ batches: [(calls: [Call], flows: [Flow])]) {
        let callCount = batches.reduce(0) { $0 + $1.calls.count }
        do {
            try calls.insert(batches: batches)
            callsStored.add(UInt64(callCount), ordering: .relaxed)
        } catch {
            storeErrors.add(1, ordering: .relaxed)
            callsLost.add(UInt64(callCount), ordering: .relaxed)
            let flowCount = batches.reduce(0) { $0 + $1.flows.count }
            logger.error("cannot store \(callCount) calls and \(flowCount) flows: \(error)")
        }
    }
}
