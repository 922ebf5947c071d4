"""`make bench`, attribution (issue 9): what naming pods costs, in the release build.

1. Per call and per packet: `fathom attribution benchmark` fills an IP → workload table of BENCH_PODS pods (default
   50 000) and BENCH_SERVICES services (10 000) and times the ingest steps in-process (calls of random pod and service
   IPs, both ends named, from a remote pod or from a local pod's socket; packets noting their socket's owner; kernel
   process events).
2. Memory and sync time through the watch: a fake Kubernetes API (Tests/Integration/cluster.py) serves the same
   cluster as list+watch JSON to a real agent; its lists are held until the agent is up, so the agent's VmRSS is read
   before and after its first sync, with the time and CPU the sync took.
3. Pod creation to first attributed call: on that agent, pods (network namespace + kubelet/containerd cgroups + a
   process calling a server pod every CALL_INTERVAL) are published in the API one at a time; the time from the
   publish until `/mcp/calls?kfl=src.pod.name=="…"` returns a call named correctly is measured.

Each part runs RUNS times (default 3) and the medians are printed. Parts 2 and 3 need root (BPF, netns, cgroups)
and must run under the integration lock: `flock /tmp/fathom-integration.lock python3 bench/attribution.py`.
`python3 bench/attribution.py calls` runs part 1 only. Everything is bounded in time; what was created is removed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Integration"))
from benchlib import cpu_seconds, median  # noqa: E402
from conftest import cgroup2_mount, free_port  # noqa: E402
from cluster import (FakeKubeAPI, LocalCluster, Pod, pod_object, rfc3339, service_object,  # noqa: E402
                     slice_object)

FATHOM = os.path.join(ROOT, os.environ.get("FATHOM", ".build/release/fathom"))
PODS = int(os.environ.get("BENCH_PODS", "50000"))
SERVICES = int(os.environ.get("BENCH_SERVICES", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
NEW_PODS = int(os.environ.get("BENCH_NEW_PODS", "5"))
CALL_INTERVAL = 0.05
NODES = 500
NAMESPACES = 200
NODE = "fathom-test-node"
# Pods' processes on one CPU (see test_attribution_agent.py: the per-CPU rings may reorder a connection otherwise).
ONE_CPU = ["taskset", "-c", "0"]
# Calls argv[1] every argv[2] seconds, at most 600 times.
CLIENT = """
import sys, time, urllib.request, urllib.error
for i in range(600):
    try:
        urllib.request.urlopen(f"{sys.argv[1]}/item-{i}", timeout=2).read()
    except (urllib.error.URLError, OSError):
        pass
    time.sleep(float(sys.argv[2]))
"""


# 1. In-process costs -------------------------------------------------------------------------------------------------

def per_call_costs():
    runs = []
    for _ in range(RUNS):
        out = subprocess.run([FATHOM, "attribution", "benchmark", "--pods", str(PODS), "--services", str(SERVICES),
                              "--calls", "1000000", "--packets", "2000000", "--process-events", "300000"],
                             capture_output=True, text=True, timeout=600, check=True).stdout
        runs.append(json.loads(out))
    m = {key: median([r[key] for r in runs]) for key in runs[0]}
    print(f"attribution per call (release, {int(m['pods']):,} pods + {int(m['services']):,} services, median of {RUNS}):")
    print(f"  call, both ends by IP (remote pod → pod or service IP)      {m['call_remote_ns'] / 1000:6.3f} µs")
    print(f"  call, local pod socket (owner → process → pod) → pod/svc IP  {m['call_local_ns'] / 1000:6.3f} µs")
    print(f"  packet, noting its local socket's owner (decode + note)     {m['packet_ns'] / 1000:6.3f} µs")
    print(f"  kernel process event (exec/connect/exit) into the history   {m['process_event_ns'] / 1000:6.3f} µs "
          f"(history ends with {int(m['history_spans']):,} spans, {int(m['history_sockets']):,} sockets)")
    print(f"  table filled in {m['fill_seconds']:.2f} s, +{m['table_resident_bytes'] / 2**20:.0f} MiB resident (in-process)")
    return m


# 2. and 3. A real agent fed through the watch ------------------------------------------------------------------------

class BenchKubeAPI(FakeKubeAPI):
    """The fake API with the list pages of a large cluster rendered once (the Python server would otherwise spend
    seconds sorting and encoding them, which is not the agent's time), and lists held until `release()`."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.pages = {}

    def prerender(self, limit):
        with self.lock:
            for resource, objects in self.objects.items():
                items = [objects[k] for k in sorted(objects)]
                for offset in range(0, max(len(items), 1), limit):
                    more = offset + limit < len(items)
                    self.pages[(resource, self.version, limit, offset)] = json.dumps({
                        "kind": "List", "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(self.version), "continue": str(offset + limit) if more else ""},
                        "items": items[offset:offset + limit]}).encode()

    def release(self):
        self.gate.set()

    def _handler(self):
        base = super()._handler()
        api = self

        class Handler(base):
            def list(self, resource, list_kind, limit, offset):
                api.gate.wait(300)
                with api.lock:
                    page = api.pages.get((resource, api.version, limit, offset))
                if page is None:
                    return super().list(resource, list_kind, limit, offset)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        return Handler


def large_cluster(api):
    """PODS pods on NODES other nodes (IPs 10.100.0.0/16), SERVICES services each with an EndpointSlice of its pods."""
    created = time.time() - 86400
    pods, members = [], [[] for _ in range(SERVICES)]
    for i in range(PODS):
        app = f"app-{i % SERVICES}"
        namespace = f"ns-{i % SERVICES % NAMESPACES}"
        name = f"{app}-7d9f8c6b5-{i:05x}"
        ip = f"10.{100 + (i >> 16)}.{i >> 8 & 255}.{i & 255}"
        pods.append(pod_object(namespace, name, str(uuid.uuid4()), ip, f"node-{i % NODES}",
                               {"app": app, "pod-template-hash": "7d9f8c6b5", "team": f"t{i % 40}"},
                               [("app", uuid.uuid4().hex + uuid.uuid4().hex)], created))
        members[i % SERVICES].append((name, ip, f"node-{i % NODES}"))
    api.load("pods", pods)
    api.load("services", [service_object(f"ns-{s % NAMESPACES}", f"app-{s}", f"172.20.{s >> 8 & 255}.{s & 255}", {"app": f"app-{s}"})
                          for s in range(SERVICES)])
    api.load("endpointslices", [slice_object(f"ns-{s % NAMESPACES}", f"app-{s}", members[s]) for s in range(SERVICES)])
    api.load("namespaces", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}", "uid": str(uuid.uuid4())}}
                            for n in range(NAMESPACES)] + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
    api.load("nodes", [{"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": f"node-{n}", "labels": {"kubernetes.io/hostname": f"node-{n}"}, "creationTimestamp": rfc3339(created)},
                        "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.{100 + (n >> 8)}.{n & 255}"}]}}
                       for n in range(NODES)])


class RunningAgent:
    def __init__(self, data_dir, kubeconfig):
        self.port = free_port()
        self.log = open(os.path.join(os.path.dirname(data_dir), "agent.log"), "w")
        self.proc = subprocess.Popen([FATHOM, "agent", "--data-dir", data_dir, "--listen", f"127.0.0.1:{self.port}",
                                      "--capture", "ebpf", "--tls", "off", "--kubeconfig", kubeconfig, "--node-name", NODE],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"agent exited with {self.proc.returncode}"
            try:
                if self.get("/healthz").get("status") == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("agent not ready after 60 s")

    def get(self, path, **query):
        url = f"http://127.0.0.1:{self.port}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def metric(self, name, label=""):
        """The sum of a metric's series (those whose labels contain `label`)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.split("{")[0].split(" ")[0] == name and label in line)

    def status(self, field):
        """A /proc/PID/status size in bytes (VmRSS, VmHWM)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def wait_until(check, seconds, step):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return None


def first_attributed_call(agent, cluster, server, index):
    """Seconds from publishing a new, already-calling pod to the first call `/mcp/calls` names as from it, and to
    the moment the agent has applied the pod's watch event (its pods/ADDED count moved); and the seconds one poll of
    both took (the resolution)."""
    pod = Pod("shop", f"checkout-5d8f7c9b4-{index:02d}x2z", f"{cluster.subnet}.{40 + index}", container="web")
    cluster.start_pod(pod, ONE_CPU + [sys.executable, "-c", CLIENT, f"http://{server.ip}:8080", str(CALL_INTERVAL)])
    time.sleep(1.0)  # the process is calling before the API knows its pod, as when the kubelet reports it late
    kfl = f'src.pod.name == "{pod.name}"'
    added = agent.metric("fathom_kubernetes_events_total", 'event="pods/ADDED"')
    published = time.monotonic()
    cluster.publish_pod(pod, {"app": "checkout"})
    applied = named = None
    polls = []
    deadline = published + 60
    while time.monotonic() < deadline and named is None:
        poll = time.monotonic()
        if applied is None and agent.metric("fathom_kubernetes_events_total", 'event="pods/ADDED"') > added:
            applied = time.monotonic() - published
        answer = agent.get("/mcp/calls", kfl=kfl, format="full", limit=5)
        if answer["total"] > 0:
            named = time.monotonic() - published
            for call in answer["calls"]:
                src, dst = call["src"], call["dst"]
                assert (src["pod"], src["namespace"], src["container_id"], dst["pod"], dst["service"]) == \
                    (pod.name, "shop", pod.container_id, server.name, "cart-service"), call
        polls.append(time.monotonic() - poll)
        time.sleep(0.01)
    cluster.stop_pod(pod)
    if named is None:
        raise SystemExit(f"no call of {pod.name} named within 60 s")
    return applied if applied is not None else named, named, median(polls)


def agent_run(workdir, api, kubeconfig, mount):
    """One agent against the large cluster: memory and time of the first sync, then pod creations."""
    data = os.path.join(workdir, f"data-{uuid.uuid4().hex[:6]}")
    os.makedirs(data)
    api.gate.clear()
    cluster = None
    agent = RunningAgent(data, kubeconfig)
    try:
        time.sleep(2.0)
        cpu_empty = agent.cpu_seconds()
        time.sleep(5.0)
        empty_cpu_share = (agent.cpu_seconds() - cpu_empty) / 5.0
        rss_before = agent.status("VmRSS")
        cpu_before = agent.cpu_seconds()
        started = time.monotonic()
        api.release()
        assert wait_until(lambda: agent.metric("fathom_attribution_cluster_synced") == 1, 300, 0.05), "no sync in 300 s"
        sync_seconds = time.monotonic() - started
        sync_cpu = agent.cpu_seconds() - cpu_before
        rss_synced = agent.status("VmRSS")
        pods = agent.metric("fathom_attribution_pods")
        time.sleep(10.0)
        cpu_idle = agent.cpu_seconds()
        time.sleep(10.0)
        idle_cpu_share = (agent.cpu_seconds() - cpu_idle) / 10.0
        rss_after = agent.status("VmRSS")
        peak = agent.status("VmHWM")

        cluster = LocalCluster(mount, subnet="10.244.214", api=api)
        cluster.node = NODE
        server = Pod("shop", "cart-7f9c6d5b8-1q4w", f"{cluster.subnet}.21")
        cluster.publish_pod(server, {"app": "cart"}, created=time.time() - 600)
        cluster.start_pod(server, ONE_CPU + [sys.executable, "-m", "http.server", "--bind", server.ip, "8080"])
        api.put("services", service_object("shop", "cart-service", "10.96.214.21", {"app": "cart"}))
        api.put("endpointslices", slice_object("shop", "cart-service", [(server.name, server.ip, NODE)]))
        latencies = [first_attributed_call(agent, cluster, server, i) for i in range(NEW_PODS)]
        return {"rss_before": rss_before, "rss_synced": rss_synced, "rss_after": rss_after, "peak": peak,
                "sync_seconds": sync_seconds, "sync_cpu": sync_cpu, "idle_cpu_share": idle_cpu_share,
                "empty_cpu_share": empty_cpu_share, "pods": pods, "applied": [a for a, _, _ in latencies],
                "named": [n for _, n, _ in latencies], "poll": [p for _, _, p in latencies]}
    finally:
        agent.stop()
        if cluster:
            for pod in list(cluster.pods):
                cluster.stop_pod(pod)
            cluster._remove_cgroups(lambda d: True)
            subprocess.run(["ip", "netns", "del", cluster.node_ns], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def watch_fed_agent():
    assert os.geteuid() == 0, "parts 2 and 3 need root"
    mount = cgroup2_mount()
    workdir = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR", "/var/tmp"), prefix="fathom-attribution-bench-")
    api = BenchKubeAPI().start()
    try:
        large_cluster(api)
        api.put("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "creationTimestamp": rfc3339(time.time() - 86400)},
                          "status": {"addresses": [{"type": "InternalIP", "address": "192.168.214.1"}]}})
        api.prerender(500)  # the agent's page size
        kubeconfig = api.kubeconfig(os.path.join(workdir, "kubeconfig"))
        runs = []
        for _ in range(RUNS):
            runs.append(agent_run(workdir, api, kubeconfig, mount))
            # Later runs start from the same cluster: forget the pods of the previous run's creations.
            for key in [k for k in api.objects["pods"] if k[0] == "shop"]:
                api.delete("pods", *key)
            api.prerender(500)
    finally:
        api.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    mib = 2 ** 20
    m = {key: median([r[key] for r in runs]) for key in runs[0] if key not in ("applied", "named", "poll")}
    print(f"agent fed through the watch ({int(m['pods']):,} pods, {SERVICES:,} services + EndpointSlices, {NODES} nodes; "
          f"median of {RUNS} agents):")
    print(f"  VmRSS before sync {m['rss_before'] / mib:.0f} MiB, just after {m['rss_synced'] / mib:.0f} MiB, "
          f"20 s later {m['rss_after'] / mib:.0f} MiB (+{(m['rss_after'] - m['rss_before']) / mib:.0f} MiB); peak {m['peak'] / mib:.0f} MiB")
    print(f"  first sync {m['sync_seconds']:.2f} s wall, {m['sync_cpu']:.2f} s of agent CPU; "
          f"then {m['idle_cpu_share'] * 100:.1f}% of a CPU with no traffic (before the sync: {m['empty_cpu_share'] * 100:.1f}%)")
    named = [n for r in runs for n in r["named"]]
    applied = [a for r in runs for a in r["applied"]]
    polls = [p for r in runs for p in r["poll"]]
    print(f"pod published in the API → first call named by /mcp/calls (src.pod.name), {len(named)} pods, "
          f"calls every {CALL_INTERVAL * 1000:.0f} ms:")
    print(f"  median {median(named) * 1000:.0f} ms (min {min(named) * 1000:.0f}, max {max(named) * 1000:.0f}); "
          f"watch event applied after median {median(applied) * 1000:.0f} ms; one poll took {median(polls) * 1000:.0f} ms; "
          f"per-agent medians "
          + ", ".join(f"{median(r['named']) * 1000:.0f}" for r in runs) + " ms")


def main():
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    parts = sys.argv[1:] or ["calls", "agent"]
    if "calls" in parts:
        per_call_costs()
    if "agent" in parts:
        watch_fed_agent()


if __name__ == "__main__":
    main()
