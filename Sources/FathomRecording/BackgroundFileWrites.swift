import Foundation

/// Writes a segment's full buffers on a thread of its own, in order, so that the capture thread does not wait for
/// the disk: a direct write waits for the device, and under contention (other writers, SQLite checkpoints) a 1 MiB
/// write was seen to take 12-46 ms, long enough at 150 MB/s to fill the capture rings. The capture thread waits only
/// when `depth` buffers are already queued. Jobs run strictly in order; after a failed one the rest are skipped
/// (reported with the same errno), so the file never has a hole.
final class BackgroundFileWrites: @unchecked Sendable {
    /// One buffer to write: `[0, directBytes)` through the O_DIRECT descriptor at `offset`, then
    /// `[bufferedFrom, end)` through the ordinary one.
    struct Job {
        var buffer: UnsafeMutableRawPointer
        var capacity: Int
        var offset: UInt64
        /// Where the bytes not in the file before start (the carried page precedes them).
        var fresh: Int
        var directBytes: Int
        var bufferedFrom: Int
        var end: Int
        /// What the write commits when it succeeds: set for a flush (whole blocks), nil for a full buffer's pages.
        var commit: Commit?
    }

    /// The file length and packets a flush commits.
    struct Commit {
        var fileBytes: UInt64
        var packets: UInt64
        var packetBytes: UInt64
        var lastTimestamp: UInt64
    }

    /// A finished job: errno 0 or the errno of its (or an earlier job's) failed write.
    struct Done {
        var job: Job
        var errno: Int32
    }

    private let fileDescriptor: Int32
    private let directFileDescriptor: Int32
    private let depth: Int
    private let condition = NSCondition()
    private var queued: [Job] = []
    private var done: [Done] = []
    private var writing = false
    private var stopping = false
    private var stopped = false
    /// errno of the first failed write; later jobs are skipped with it.
    private var failure: Int32 = 0
    /// Set once the file system refused a direct write: later pages go through the page cache. The writing thread's.
    private var directRefused = false

    /// Called on the writes' thread after each successful job, in order, before it is reported finished.
    private let written: ((Job) -> Void)?

    init(fileDescriptor: Int32, directFileDescriptor: Int32, depth: Int, written: ((Job) -> Void)?) {
        self.fileDescriptor = fileDescriptor
        self.directFileDescriptor = directFileDescriptor
        self.depth = max(depth, 1)
        self.written = written
        let thread = Thread { [self] in run() }
        thread.name = "fathom-segment-writes"
        thread.start()
    }

    /// Whether the file system refused a direct write (whole pages now go through the page cache).
    var refusedDirectWrites: Bool {
        condition.lock()
        defer { condition.unlock() }
        return directRefused
    }

    /// Queues a job; waits while `depth` jobs are pending.
    func submit(_ job: Job) {
        condition.lock()
        while queued.count + (writing ? 1 : 0) >= depth { condition.wait() }
        queued.append(job)
        condition.broadcast()
        condition.unlock()
    }

    /// Jobs finished since the last call, in order; with `waiting`, after every pending job has finished.
    func finished(waiting: Bool) -> [Done] {
        condition.lock()
        defer { condition.unlock() }
        while waiting && (!queued.isEmpty || writing) { condition.wait() }
        let taken = done
        done.removeAll(keepingCapacity: true)
        return taken
    }

    /// Finishes every pending job, then ends the thread; returns what finished since the last `finished`.
    func stop() -> [Done] {
        let taken = finished(waiting: true)
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
        return taken
    }

    private func run() {
        condition.lock()
        while true {
            while queued.isEmpty && !stopping { condition.wait() }
            if queued.isEmpty { break }
            let job = queued.removeFirst()
            writing = true
            let skip = failure
            condition.unlock()
            let refused = directRefused
            let (code, refusedNow) = skip != 0 ? (skip, refused) : write(job, directRefused: refused)
            if code == 0 { written?(job) }
            condition.lock()
            directRefused = refusedNow
            if code != 0 && failure == 0 { failure = code }
            done.append(Done(job: job, errno: code))
            writing = false
            condition.broadcast()
        }
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Writes one job; returns its errno and whether direct writes are refused from now on.
    private func write(_ job: Job, directRefused: Bool) -> (Int32, Bool) {
        var from = job.bufferedFrom
        var refused = directRefused
        if job.directBytes > 0 && !refused {
            let result = POSIX.writeAll(
                directFileDescriptor, UnsafeRawBufferPointer(start: job.buffer, count: job.directBytes), at: job.offset)
            if result.errno == POSIX.invalidArgument && result.written == 0 {
                refused = true  // the file system takes no direct writes after all: page cache it is
                from = 0
            } else if result.errno != 0 {
                return (result.errno, refused)
            }
        } else if job.directBytes > 0 {
            from = 0
        }
        guard job.end > from else { return (0, refused) }
        let code = POSIX.writeAll(
            fileDescriptor, UnsafeRawBufferPointer(start: job.buffer + from, count: job.end - from),
            at: job.offset + UInt64(from)).errno
        return (code, refused)
    }
}
