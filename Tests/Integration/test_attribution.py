"""Attribution on a one-machine test cluster: pods in network namespaces and kubelet-style cgroups, a fake
Kubernetes API serving list and watch, and `fathom attribution` naming each endpoint before and after an IP is
reused by another pod."""
import json
import os
import subprocess
import time

import pytest

from conftest import FATHOM, cgroup2_mount, require, run
from cluster import FakeKubeAPI, Pod, LocalCluster, make_certificates, pod_object, service_object, slice_object

NS = "shop"


@pytest.fixture
def cluster(root):
    c = LocalCluster(cgroup2_mount())
    try:
        yield c
    finally:
        c.destroy()


def resolve(cluster, *endpoints, pid=None, cgroup_id=None, extra=()):
    cmd = [FATHOM, "attribution", "resolve", "--kubeconfig", cluster.api.kubeconfig(f"/tmp/fathom-kubeconfig-{cluster.tag}"), *extra]
    if pid:
        cmd += ["--pid", str(pid)]
    if cgroup_id:
        cmd += ["--cgroup-id", str(cgroup_id)]
    out = subprocess.run(cmd + list(endpoints), check=True, capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def shop(cluster):
    """frontend, cart-service and payment-service, one pod each, with services and EndpointSlices."""
    pods = {}
    for i, (app, service) in enumerate([("frontend", "frontend"), ("cart", "cart-service"), ("payment", "payment-service")]):
        pod = cluster.start_pod(Pod(NS, f"{app}-5d8f7c9b4-{i}x2z", f"{cluster.subnet}.{10 + i}"))
        cluster.publish_pod(pod, {"app": app, "pod-template-hash": "5d8f7c9b4"}, created=time.time() - 600)
        cluster.api.put("services", service_object(NS, service, f"10.96.213.{10 + i}", {"app": app}))
        cluster.api.put("endpointslices", slice_object(NS, service, [(pod.name, pod.ip, cluster.node)]))
        pods[app] = pod
    cluster.api.put("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return pods


def wait_for_process(pod):
    """The pod's process has moved into its cgroup (bounded)."""
    for _ in range(100):
        with open(os.path.join(pod.cgroup, "cgroup.procs")) as f:
            if f.read().split():
                return
        time.sleep(0.05)
    raise AssertionError(f"no process in {pod.cgroup}")


def test_pods_services_and_local_processes(cluster):
    pods = shop(cluster)
    now = int(time.time() * 1000)
    ips = [f"{p.ip}@{now}" for p in pods.values()] + [f"10.96.213.11@{now}", f"192.168.213.1@{now}", f"10.99.99.99@{now}"]
    endpoints, _ = resolve(cluster, *ips)
    by_ip = {e["ip"]: e for e in endpoints}
    for app, service in [("frontend", "frontend"), ("cart", "cart-service"), ("payment", "payment-service")]:
        e = by_ip[pods[app].ip]
        assert (e["pod"], e["namespace"], e["service"], e["node"]) == (pods[app].name, NS, service, cluster.node), e
        assert (e["container"], e["containerID"], e["labels"]["app"], e["resolution"]) == ("app", pods[app].container_id, app, "pod"), e
    assert (by_ip["10.96.213.11"]["service"], by_ip["10.96.213.11"]["resolution"]) == ("cart-service", "service")
    assert (by_ip["192.168.213.1"]["node"], by_ip["192.168.213.1"]["resolution"]) == (cluster.node, "node")
    assert by_ip["10.99.99.99"]["resolution"] == "unknown" and "pod" not in by_ip["10.99.99.99"]

    # Local identity: the pod's process through /proc, and its cgroup id through the cgroup v2 hierarchy.
    cart = pods["cart"]
    wait_for_process(cart)
    pid = int(open(os.path.join(cart.cgroup, "cgroup.procs")).read().split()[0])
    [by_pid], _ = resolve(cluster, f"127.0.0.1@{now}", pid=pid)
    assert (by_pid["pod"], by_pid["containerID"], by_pid["pid"], by_pid["resolution"]) == (cart.name, cart.container_id, pid, "pod"), by_pid
    assert by_pid["process"].startswith("python3"), by_pid
    [by_cgroup], _ = resolve(cluster, f"127.0.0.1@{now}", cgroup_id=cart.cgroup_id)
    assert (by_cgroup["pod"], by_cgroup["service"], by_cgroup["container"]) == (cart.name, "cart-service", "app"), by_cgroup


def test_ip_reuse_through_the_watch(cluster):
    """Pod and EndpointSlice events arrive on separate watch streams, in either order: a pod deleted before its
    slice is known still keeps the service it served (WorkloadTable patches closed intervals from late slices)."""
    pods = shop(cluster)
    before = int(time.time() * 1000) - 1000
    cluster.api.pin_lists()  # the CLI's list sees the shop as it was; the reuse reaches it only through the watch
    cart = pods["cart"]
    cluster.stop_pod(cart)
    cluster.api.delete("pods", NS, cart.name)
    cluster.api.put("endpointslices", slice_object(NS, "cart-service", []))
    time.sleep(0.01)
    reused_at = int(time.time() * 1000)
    db = cluster.start_pod(Pod(NS, "catalogue-db-0", cart.ip, container="postgres"))
    cluster.publish_pod(db, {"app": "catalogue-db"})
    cluster.api.put("services", service_object(NS, "catalogue-db", "10.96.213.20", {"app": "catalogue-db"}))
    cluster.api.put("endpointslices", slice_object(NS, "catalogue-db", [(db.name, db.ip, cluster.node)]))
    after = int(time.time() * 1000) + 1000

    # 6 events: cart DELETED, its slice MODIFIED, the new pod, service and slice ADDED… (pods, services, slices).
    endpoints, stats = resolve(cluster, f"{cart.ip}@{before}", f"{cart.ip}@{after}", extra=["--watch-events", "5", "--stats"])
    old, new = endpoints
    assert (old["pod"], old["service"], old["containerID"]) == (cart.name, "cart-service", cart.container_id), old
    assert (new["pod"], new["service"], new["container"], new["containerID"]) == ("catalogue-db-0", "catalogue-db", "postgres", db.container_id), new
    assert json.loads(stats.strip().splitlines()[-1]).get("pods/DELETED", 0) >= 1
    assert before < reused_at < after


def test_relist_after_410_gone(cluster):
    pods = shop(cluster)
    cluster.api.pin_lists(once=True)
    cart = pods["cart"]
    cluster.api.delete("pods", NS, cart.name)
    cluster.api.expire_history()  # the first watch gets 410 Gone: the watcher must list again, and sees the delete
    later = int(time.time() * 1000) + 60_000
    endpoints, stats = resolve(cluster, f"{cart.ip}@{later}", extra=["--watch-seconds", "0.5", "--stats"])
    counts = json.loads(stats.strip().splitlines()[-1])
    assert counts.get("pods/relist", 0) >= 1, counts
    assert "pod" not in endpoints[0], endpoints[0]


def test_bad_kubeconfig_is_a_clear_error(root, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters:\n- cluster:\n    certificate-authority-data: AAAA\n  name: x\n")
    out = subprocess.run([FATHOM, "attribution", "workloads", "--kubeconfig", str(bad)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "server" in out.stderr, out.stderr


def test_workloads_listing(cluster):
    pods = shop(cluster)
    out = subprocess.run([FATHOM, "attribution", "workloads", "--kubeconfig", cluster.api.kubeconfig(f"/tmp/fathom-kubeconfig-{cluster.tag}")],
                         check=True, capture_output=True, text=True, timeout=60)
    listing = json.loads(out.stdout)
    names = {(w["kind"], w["name"]) for w in listing["workloads"]}
    assert {("pod", p.name) for p in pods.values()} <= names
    assert ("service", "payment-service") in names and ("node", cluster.node) in names
    assert NS in listing["namespaces"]


def test_tls_api_with_the_clusters_ca(root, tmp_path):
    """In-cluster APIs are HTTPS with the cluster's own CA: trusted from the kubeconfig; any other CA is refused."""
    api = FakeKubeAPI(tls_dir=tmp_path).start()
    try:
        api.put("pods", pod_object(NS, "web-0", "u-0", "10.244.213.50", "n1", {"app": "web"}, [("app", "ab" * 32)], time.time() - 60))
        config = api.kubeconfig(str(tmp_path / "kubeconfig"))
        out = subprocess.run([FATHOM, "attribution", "workloads", "--kubeconfig", config], check=True, capture_output=True, text=True, timeout=60)
        assert ("pod", "web-0") in {(w["kind"], w["name"]) for w in json.loads(out.stdout)["workloads"]}
        other = tmp_path / "other"
        other.mkdir()
        wrong = api.kubeconfig(str(tmp_path / "wrong"), ca_pem=make_certificates(str(other)))
        out = subprocess.run([FATHOM, "attribution", "workloads", "--kubeconfig", wrong], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out.stderr, out.stderr
    finally:
        api.stop()
