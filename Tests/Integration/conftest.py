"""Shared fixtures of the integration tests: the agent as a process, test hosts in network namespaces joined by a
veth pair, cgroups for the traffic, and readers of the recording (tshark and fathom's own)."""
import glob
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FATHOM = str((ROOT / os.environ.get("FATHOM", ".build/release/fathom")).resolve())
TRAFFIC = str(pathlib.Path(__file__).with_name("traffic.py"))
CI = os.environ.get("CI") == "true"


def require(condition, why):
    """A privileged test may skip on a machine that cannot run it, never in CI."""
    if not condition:
        if CI:
            pytest.fail(f"CI must be able to run this test: {why}")
        pytest.skip(why)


@pytest.fixture
def root():
    require(os.geteuid() == 0, "needs root (BPF, network namespaces, cgroups)")
    require(os.path.exists(FATHOM), f"{FATHOM} is not built")


def run(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def in_netns(netns, cmd):
    return (["ip", "netns", "exec", netns] if netns else []) + list(cmd)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """`fathom agent` as a child process, optionally inside a network namespace."""

    def __init__(self, data_dir, *args, netns=None):
        self.data_dir = str(data_dir)
        self.netns = netns
        self.port = free_port()
        self.log_path = pathlib.Path(self.data_dir).parent / f"agent-{uuid.uuid4().hex[:6]}.log"
        self.log = open(self.log_path, "w")
        cmd = in_netns(netns, [FATHOM, "agent", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}", *args])
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.output()}")
            try:
                health = json.loads(self.get("/healthz"))
                if health.get("status") == "ok":
                    return health
            except (subprocess.CalledProcessError, json.JSONDecodeError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent not ready after {timeout}s:\n{self.output()}")

    def get(self, path):
        return run(*in_netns(self.netns, ["curl", "-sf", "--max-time", "5", f"http://127.0.0.1:{self.port}{path}"])).stdout

    def metrics(self):
        """Prometheus text → {"name{labels}": value}."""
        values = {}
        for line in self.get("/metrics").splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return values

    def metric_sum(self, name):
        return sum(v for k, v in self.metrics().items() if k == name or k.startswith(name + "{"))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"agent did not stop within {timeout}s on {sig}:\n{self.output()}")
        self.log.close()
        return self.proc.returncode

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def agents():
    started = []

    def start(data_dir, *args, netns=None, wait=True):
        agent = Agent(data_dir, *args, netns=netns)
        started.append(agent)
        if wait:
            agent.wait_ready()
        return agent

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()


class Hosts:
    """Two test hosts, each a network namespace, joined by a veth pair; IPv4 and IPv6."""

    def __init__(self, tag):
        self.a, self.b = f"fta{tag}", f"ftb{tag}"
        self.va, self.vb = f"va{tag}", f"vb{tag}"
        self.a4, self.b4 = "10.213.7.1", "10.213.7.2"
        self.a6, self.b6 = "fd00:213::1", "fd00:213::2"

    def create(self):
        run("ip", "netns", "add", self.a)
        run("ip", "netns", "add", self.b)
        run("ip", "link", "add", self.va, "type", "veth", "peer", "name", self.vb)
        run("ip", "link", "set", self.va, "netns", self.a)
        run("ip", "link", "set", self.vb, "netns", self.b)
        for ns, dev, v4, v6 in ((self.a, self.va, self.a4, self.a6), (self.b, self.vb, self.b4, self.b6)):
            run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            run("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", dev, "up")

    def destroy(self):
        for ns in (self.a, self.b):
            run("ip", "netns", "del", ns, check=False)


@pytest.fixture
def hosts(root):
    h = Hosts(uuid.uuid4().hex[:6])
    try:
        h.create()
        yield h
    finally:
        h.destroy()


def cgroup2_mount():
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.startswith("cgroup2 "):
            mounts = [left.split()[4]]
            if mounts[0] in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                return mounts[0]
    raise AssertionError("no cgroup v2 mount")


class Cgroups:
    """Fresh cgroup v2 groups for traffic processes, so records can be checked against their cgroup ids."""

    def __init__(self):
        self.mount = cgroup2_mount()
        self.paths = []

    def make(self, name):
        path = os.path.join(self.mount, f"fathom-test-{name}-{uuid.uuid4().hex[:6]}")
        os.mkdir(path)
        self.paths.append(path)
        return path, os.stat(path).st_ino

    @staticmethod
    def wrap(path, cmd):
        """The command, run inside the cgroup at `path`."""
        return ["sh", "-c", f'echo $$ > {path}/cgroup.procs && exec "$@"', "sh", *cmd]

    def cleanup(self):
        for path in self.paths:
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


@pytest.fixture
def cgroups(root):
    c = Cgroups()
    yield c
    c.cleanup()


def exchange(kind, server_host, marker, count, *, server_netns=None, client_netns=None, server_cgroup=None,
             client_cgroup=None, port=None):
    """A server and a client of `kind` (udp or tcp) exchanging `count` marked messages; waits for both."""
    port = port or free_port()
    server_cmd = in_netns(server_netns, [sys.executable, TRAFFIC, f"{kind}-server", server_host, str(port), str(count)])
    client_cmd = in_netns(client_netns, [sys.executable, TRAFFIC, f"{kind}-client", server_host, str(port), marker, str(count)])
    if server_cgroup:
        server_cmd = Cgroups.wrap(server_cgroup, server_cmd)
    if client_cgroup:
        client_cmd = Cgroups.wrap(client_cgroup, client_cmd)
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        run(*client_cmd, timeout=60)
        server.wait(timeout=30)
        assert server.returncode == 0, server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def segments(data_dir):
    return sorted(glob.glob(f"{data_dir}/**/*.pcapng", recursive=True))


def tshark_packets(files):
    """Every packet as tshark reads it: (direction flags, hex payload of UDP or TCP)."""
    packets = []
    for f in files:
        out = run("tshark", "-r", f, "-T", "fields", "-E", "separator=|", "-e", "frame.packet_flags_direction",
                  "-e", "udp.payload", "-e", "tcp.payload", "-e", "ip.src", "-e", "ipv6.src").stdout
        for line in out.splitlines():
            direction, udp, tcp, src4, src6 = line.split("|")
            packets.append({"direction": direction, "payload": bytes.fromhex((udp or tcp).replace(":", "")),
                            "src": src4 or src6})
    return packets


def l4_payload(data, link_type):
    """The UDP or TCP payload of a raw-IP (101) or Linux cooked v2 (276) packet; b"" for anything else."""
    if link_type == 276:
        data = data[20:]
    elif link_type != 101:
        return b""
    if not data:
        return b""
    version = data[0] >> 4
    if version == 4:
        proto, offset = data[9], (data[0] & 0xF) * 4
    elif version == 6:
        proto, offset = data[6], 40
    else:
        return b""
    if proto == 17:
        return data[offset + 8:]
    if proto == 6 and len(data) > offset + 12:
        return data[offset + (data[offset + 12] >> 4) * 4:]
    return b""


def fathom_packets(files):
    """Every packet as fathom's own reader reads it (one JSON object a packet), with its L4 payload decoded."""
    if not files:
        return []
    out = run(FATHOM, "packets", "--payload", *files).stdout
    packets = []
    for line in out.splitlines():
        if line.strip():
            p = json.loads(line)
            p["payload"] = l4_payload(bytes.fromhex(p.pop("bytes")), p["link_type"])
            packets.append(p)
    return packets

