import XCTest
@testable import FathomAttribution

final class CgroupIdentityTests: XCTestCase {
    let id = "4e1f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
    let uid = "1a2b3c4d-5e6f-7890-abcd-ef1234567890"
    var uidSystemd: String { uid.replacingOccurrences(of: "-", with: "_") }

    func check(_ path: String, container: String?, runtime: ContainerRuntime?, pod: String?, qos: PodQOSClass?,
               file: StaticString = #filePath, line: UInt = #line) {
        let identity = CgroupIdentity(cgroupPath: path)
        XCTAssertEqual(identity.containerID, container, "container of \(path)", file: file, line: line)
        XCTAssertEqual(identity.runtime, runtime, "runtime of \(path)", file: file, line: line)
        XCTAssertEqual(identity.podUID, pod, "pod of \(path)", file: file, line: line)
        XCTAssertEqual(identity.qosClass, qos, "qos of \(path)", file: file, line: line)
    }

    func testKubeletSystemdLayouts() {
        check("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice/cri-containerd-\(id).scope",
              container: id, runtime: .containerd, pod: uid, qos: .burstable)
        check("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidSystemd).slice/crio-\(id).scope",
              container: id, runtime: .crio, pod: uid, qos: .besteffort)
        check("/kubepods.slice/kubepods-pod\(uidSystemd).slice/docker-\(id).scope",
              container: id, runtime: .docker, pod: uid, qos: .guaranteed)
        check("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice/crio-conmon-\(id).scope",
              container: id, runtime: .crio, pod: uid, qos: .burstable)
        // The pod slice alone (a process moved into the pod cgroup, or the sandbox before its scope exists).
        check("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice",
              container: nil, runtime: nil, pod: uid, qos: .burstable)
    }

    func testKubeletCgroupfsLayouts() {
        check("/kubepods/burstable/pod\(uid)/\(id)", container: id, runtime: .unknown, pod: uid, qos: .burstable)
        check("/kubepods/pod\(uid)/\(id)", container: id, runtime: .unknown, pod: uid, qos: nil)
        check("/kubepods/besteffort/pod\(uid)/crio-\(id)", container: id, runtime: .crio, pod: uid, qos: .besteffort)
        // Static pods: the UID is the config hash, 32 hex.
        check("/kubepods/burstable/pod0123456789abcdef0123456789abcdef/\(id)",
              container: id, runtime: .unknown, pod: "0123456789abcdef0123456789abcdef", qos: .burstable)
    }

    func testNestedKindAndK3sLayouts() {
        // kind: the node is a docker container; the pod's container is the innermost.
        let node = String(repeating: "ab", count: 32)
        check("/system.slice/docker-\(node).scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(uidSystemd).slice/cri-containerd-\(id).scope",
              container: id, runtime: .containerd, pod: uid, qos: .besteffort)
    }

    func testPlainContainerRuntimes() {
        check("/system.slice/docker-\(id).scope", container: id, runtime: .docker, pod: nil, qos: nil)
        check("/docker/\(id)", container: id, runtime: .docker, pod: nil, qos: nil)
        check("/machine.slice/libpod-\(id).scope", container: id, runtime: .podman, pod: nil, qos: nil)
        check("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-\(id).scope/container",
              container: id, runtime: .podman, pod: nil, qos: nil)
        check("/machine.slice/libpod-conmon-\(id).scope", container: id, runtime: .podman, pod: nil, qos: nil)
        check("/libpod_parent/\(id)", container: id, runtime: .podman, pod: nil, qos: nil)
        check("/k8s.io/\(id)", container: id, runtime: .containerd, pod: nil, qos: nil)
        check("/system.slice/nerdctl-\(id).scope", container: id, runtime: .containerd, pod: nil, qos: nil)
        check("/DOCKER/\(id.uppercased())", container: id, runtime: .unknown, pod: nil, qos: nil)
    }

    func testNotContainers() {
        for path in ["/", "", "/user.slice/user-0.slice/session-3.scope", "/system.slice/containerd.service",
                     "/system.slice/docker-\(id.prefix(63)).scope", "/system.slice/docker-\(id)x.scope",
                     "/kubepods.slice/kubepods-burstable.slice", "/kubepods/burstable/podnot-a-uid",
                     "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd.dropLast()).slice",
                     "/\(String(repeating: "g", count: 64))", "//////"] {
            let identity = CgroupIdentity(cgroupPath: path)
            XCTAssertNil(identity.containerID, path)
            XCTAssertNil(identity.podUID, path)
        }
        XCTAssertEqual(CgroupIdentity(cgroupPath: "/kubepods.slice/kubepods-burstable.slice").qosClass, .burstable)
    }

    func testProcCgroupFiles() {
        let v2 = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice/cri-containerd-\(id).scope\n"
        XCTAssertEqual(CgroupIdentity(procCgroupFile: v2).containerID, id)
        // Hybrid: the v2 line is "/" and the v1 controllers name the container.
        let hybrid = """
            12:cpuset:/kubepods/burstable/pod\(uid)/\(id)
            11:memory:/kubepods/burstable/pod\(uid)/\(id)
            1:name=systemd:/kubepods/burstable/pod\(uid)/\(id)
            0::/
            """
        let identity = CgroupIdentity(procCgroupFile: hybrid)
        XCTAssertEqual(identity.containerID, id)
        XCTAssertEqual(identity.podUID, uid)
        XCTAssertTrue(CgroupIdentity(procCgroupFile: "0::/user.slice\n").isEmpty)
        XCTAssertTrue(CgroupIdentity(procCgroupFile: "garbage\n::\n").isEmpty)
        XCTAssertEqual(ProcFS.cgroupPath(hybrid), "/")
        XCTAssertEqual(ProcFS.cgroupPath("5:memory:/docker/\(id)\n"), "/docker/\(id)")
    }

    func testBareContainerID() {
        XCTAssertEqual(CgroupIdentity.bareContainerID("containerd://\(id)"), id[...])
        XCTAssertEqual(CgroupIdentity.bareContainerID("cri-o://\(id)"), id[...])
        XCTAssertEqual(CgroupIdentity.bareContainerID(id), id[...])
    }
}
