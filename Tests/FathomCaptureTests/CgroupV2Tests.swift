import XCTest

@testable import FathomCapture

final class CgroupV2Tests: XCTestCase {
    func testPrefersTheUsualMountsOnHybridSystems() {
        let info = """
            30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
            31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw
            33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,memory
            """
        XCTAssertEqual(CgroupV2.mountPoint(mountInfo: info), "/sys/fs/cgroup/unified")
    }

    func testUnifiedLayout() {
        let info = """
            40 30 0:30 / /run/other rw - cgroup2 cgroup2 rw
            35 25 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
            """
        XCTAssertEqual(CgroupV2.mountPoint(mountInfo: info), "/sys/fs/cgroup")
    }

    func testOctalEscapesAndNoMount() {
        XCTAssertEqual(CgroupV2.mountPoint(mountInfo: "1 1 0:1 / /mnt/a\\040b rw - cgroup2 cgroup2 rw"), "/mnt/a b")
        XCTAssertNil(CgroupV2.mountPoint(mountInfo: "1 1 0:1 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu"))
        XCTAssertNil(CgroupV2.mountPoint(mountInfo: "garbage\n\n - "))
    }
}
