import FathomModel
import XCTest
@testable import FathomAttribution

private let podPath = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu_1.slice/cri-containerd-"
    + String(repeating: "c", count: 64) + ".scope"

final class ProcessHistoryTests: XCTestCase {
    func event(_ kind: ProcessEvent.Kind, pid: Int32, atMs: Int64, startMs: Int64 = 0, cgroup: UInt64 = 9,
               command: String = "sh", filename: String? = nil, port: UInt16 = 0) -> ProcessEvent {
        ProcessEvent(kind: kind, timestampNanoseconds: UInt64(atMs) * 1_000_000, startNanoseconds: UInt64(startMs) * 1_000_000,
                     pid: pid, cgroupID: cgroup, command: command, filename: filename, localIP: port == 0 ? nil : "10.1.0.5",
                     localPort: port)
    }

    func testExecThenExitNamesThePidOnlyWhileItRan() {
        let history = ProcessHistory(cgroupPath: { $0 == 9 ? podPath : nil })
        history.apply(event(.exec, pid: 100, atMs: 10_000, command: "curl", filename: "/usr/bin/curl"))
        history.apply(event(.exit, pid: 100, atMs: 20_000, command: "curl"))

        let during = history.process(pid: 100, atMs: 15_000)
        XCTAssertEqual(during?.name, "curl")
        XCTAssertEqual(during?.executable, "/usr/bin/curl")
        XCTAssertEqual(during?.identity.containerID, String(repeating: "c", count: 64), "the cgroup names the container")
        XCTAssertNotNil(history.process(pid: 100, atMs: 20_500), "a packet stamped just after the exit event still counts")
        XCTAssertNil(history.process(pid: 100, atMs: 25_000), "the process had ended")
        XCTAssertNil(history.process(pid: 100, atMs: 5_000), "the pid was not this process yet")
        XCTAssertNil(history.process(pid: 101, atMs: 15_000))
    }

    func testExecReplacesTheProgramOfARunningPid() {
        let history = ProcessHistory()
        history.seed([ProcessRecord(pid: 7, command: "bash", executable: "/usr/bin/bash", cgroupPath: nil, identity: CgroupIdentity())])
        history.apply(event(.exec, pid: 7, atMs: 50_000, command: "python3", filename: "/usr/bin/python3"))
        XCTAssertEqual(history.process(pid: 7, atMs: 1_000)?.name, "bash", "seeded at start: known since always")
        XCTAssertEqual(history.process(pid: 7, atMs: 49_999)?.name, "bash")
        XCTAssertEqual(history.process(pid: 7, atMs: 50_001)?.name, "python3")
    }

    func testAForkedChildIsKnownFromItsExit() {
        let history = ProcessHistory()
        history.apply(event(.exit, pid: 300, atMs: 9_000, startMs: 4_000, command: "nginx"))
        XCTAssertEqual(history.process(pid: 300, atMs: 6_000)?.name, "nginx")
        XCTAssertNil(history.process(pid: 300, atMs: 2_000))
    }

    func testExecutableFromProcWinsOverTheExecPath() {
        let history = ProcessHistory(executable: { $0 == 5 ? "/usr/bin/python3.13" : nil })
        history.apply(event(.exec, pid: 5, atMs: 1_000, command: "exe", filename: "/proc/self/exe"))
        XCTAssertEqual(history.process(pid: 5, atMs: 2_000)?.name, "python3.13")
    }

    func testSocketOwnersFollowPortReuse() {
        let history = ProcessHistory()
        history.apply(event(.connect, pid: 10, atMs: 1_000, startMs: 500, command: "curl", port: 40_000))
        history.apply(event(.exit, pid: 10, atMs: 2_000, command: "curl"))
        history.apply(event(.connect, pid: 11, atMs: 30_000, startMs: 29_000, command: "wget", port: 40_000))
        history.apply(event(.listen, pid: 12, atMs: 3_000, startMs: 2_500, command: "nginx", port: 8080))

        XCTAssertEqual(history.socketOwner(cgroupID: 9, port: 40_000, atMs: 1_500), 10)
        XCTAssertEqual(history.socketOwner(cgroupID: 9, port: 40_000, atMs: 999), 10, "the SYN precedes the connect event")
        XCTAssertEqual(history.socketOwner(cgroupID: 9, port: 40_000, atMs: 30_500), 11)
        XCTAssertNil(history.socketOwner(cgroupID: 8, port: 40_000, atMs: 1_500), "another cgroup's port")
        XCTAssertEqual(history.socketOwner(cgroupID: 9, port: 8080, atMs: 900_000), 12, "a listener serves until it is replaced")
        XCTAssertEqual(history.process(pid: 11, atMs: 30_500)?.name, "wget", "a connect names a process forked without exec")
    }

    func testEndedProcessesAreForgottenAfterRetentionAndCapacityHolds() {
        let history = ProcessHistory(retentionMs: 10_000, capacity: 100)
        for pid in 1...1_000 {
            let at = Int64(pid) * 100
            history.apply(event(.exec, pid: Int32(pid), atMs: at, command: "job"))
            history.apply(event(.connect, pid: Int32(pid), atMs: at + 10, command: "job", port: UInt16(pid)))
            history.apply(event(.exit, pid: Int32(pid), atMs: at + 50, command: "job"))
            XCTAssertLessThanOrEqual(history.counts.spans, 101)
        }
        XCTAssertNotNil(history.process(pid: 1_000, atMs: 100_010), "the newest is kept")
        XCTAssertNil(history.process(pid: 1, atMs: 110), "the oldest ended long ago")
        XCTAssertNil(history.socketOwner(cgroupID: 9, port: 1, atMs: 110), "its socket goes with it")
        XCTAssertLessThanOrEqual(history.counts.sockets, 101)
        XCTAssertGreaterThan(history.counts.evicted, 0, "processes forgotten for capacity, not age, are counted")
    }

    func testSavedHistoryAnswersLikeTheOriginal() throws {
        let history = ProcessHistory(cgroupPath: { _ in podPath })
        history.apply(event(.exec, pid: 100, atMs: 10_000, command: "curl", filename: "/usr/bin/curl"))
        history.apply(event(.connect, pid: 100, atMs: 10_100, command: "curl", port: 41_000))
        history.apply(event(.exit, pid: 100, atMs: 11_000, command: "curl"))
        history.apply(event(.exec, pid: 200, atMs: 90_000, command: "late", filename: "/bin/late"))

        let saved = history.saved(fromMs: 9_000, untilMs: 12_000)
        XCTAssertEqual(saved.spans.map(\.pid), [100], "a process that started after the window is left out")
        let restored = ProcessHistory(restoring: try JSONDecoder().decode(ProcessHistory.Saved.self, from: JSONEncoder().encode(saved)))
        XCTAssertEqual(restored.process(pid: 100, atMs: 10_500), history.process(pid: 100, atMs: 10_500))
        XCTAssertEqual(restored.socketOwner(cgroupID: 9, port: 41_000, atMs: 10_500), 100)
        XCTAssertNil(restored.process(pid: 200, atMs: 95_000))
    }

    func testAttributorNamesASocketsProcessAfterItExited() {
        let history = ProcessHistory()
        history.apply(event(.exec, pid: 100, atMs: 10_000, cgroup: 42, command: "curl", filename: "/usr/bin/curl"))
        history.apply(event(.connect, pid: 100, atMs: 10_100, cgroup: 42, command: "curl", port: 41_000))
        history.apply(event(.exit, pid: 100, atMs: 11_000, cgroup: 42, command: "curl"))
        let attributor = Attributor(processHistory: history)
        var endpoint = Endpoint(ip: "10.1.0.5", port: 41_000)
        attributor.attribute(&endpoint, timestampMs: 10_200, cgroupID: 42)
        XCTAssertEqual(endpoint.process, "curl")
        XCTAssertEqual(endpoint.pid, 100)
        XCTAssertEqual(endpoint.resolution, "host")
        var other = Endpoint(ip: "10.1.0.5", port: 41_001)
        attributor.attribute(&other, timestampMs: 10_200, cgroupID: 42)
        XCTAssertNil(other.process, "no socket owner for that port")
    }
}
