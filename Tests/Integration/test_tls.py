"""TLS plaintext capture: real TLS programs (curl with libssl 3, Python's ssl) against a local HTTPS server; the
decrypted HTTP must be in the recording as `ebpf_tls` segments with the right 5-tuple, pid and cgroup, in order."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import FATHOM, Cgroups, free_port, require, run, segments, fathom_packets

TLS_TRAFFIC = os.path.join(os.path.dirname(__file__), "tls_traffic.py")


@pytest.fixture
def certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "1", "-subj", "/CN=localhost")
    return str(cert), str(key)


class Server:
    """tls_traffic.py's HTTPS server, in a cgroup of its own."""

    def __init__(self, certificate, cgroup_path):
        self.port = free_port()
        cmd = Cgroups.wrap(cgroup_path, [sys.executable, TLS_TRAFFIC, "server", *certificate, str(self.port)])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def wait_hooked(agent, pid, timeout=20):
    """Waits until /tls/targets lists `pid` as hooked; returns the report."""
    deadline = time.monotonic() + timeout
    report = {}
    while time.monotonic() < deadline:
        report = json.loads(agent.get("/tls/targets"))
        if any(t["pid"] == pid and t["hooked"] for t in report["targets"]):
            return report
        time.sleep(0.2)
    raise AssertionError(f"pid {pid} not hooked after {timeout}s: {report}\n{agent.output()}")


def ip_ports(data):
    """(src, sport, dst, dport, seq, payload) of a synthesized raw-IP TCP segment."""
    if data[0] >> 4 == 4:
        header = (data[0] & 0xF) * 4
        src, dst = ".".join(map(str, data[12:16])), ".".join(map(str, data[16:20]))
    else:
        header = 40
        src, dst = data[8:24].hex(), data[24:40].hex()
    tcp = data[header:]
    offset = (tcp[12] >> 4) * 4
    return (src, int.from_bytes(tcp[0:2], "big"), dst, int.from_bytes(tcp[2:4], "big"),
            int.from_bytes(tcp[4:8], "big"), tcp[offset:])


def tls_segments(data_dir):
    """Every ebpf_tls packet of the recording, with its addresses, ports, sequence number and plaintext."""
    out = run(FATHOM, "packets", "--payload", *segments(data_dir)).stdout
    result = []
    for line in out.splitlines():
        p = json.loads(line)
        if p["source"] != "ebpf_tls":
            continue
        p["src"], p["sport"], p["dst"], p["dport"], p["seq"], p["plaintext"] = ip_ports(bytes.fromhex(p.pop("bytes")))
        result.append(p)
    return result


def stream(packets, pid, direction, sport=None, dport=None):
    """The plaintext one process wrote (outbound) or read (inbound) on one flow, reassembled by sequence number;
    asserts there is no gap."""
    chosen = [p for p in packets if p.get("pid") == pid and p["direction"] == direction
              and (sport is None or p["sport"] == sport) and (dport is None or p["dport"] == dport)]
    assert chosen, f"no {direction} plaintext of pid {pid}"
    flows = {(p["src"], p["sport"], p["dst"], p["dport"]) for p in chosen}
    assert len(flows) == 1, f"pid {pid} {direction}: several flows {flows}"
    # Records of one connection drained from different CPUs' rings may be recorded out of order: the stream starts
    # at the lowest sequence number (taken relative to any one of them, across a wrap).
    first = chosen[0]["seq"]
    base = first + min(((p["seq"] - first + (1 << 31)) % (1 << 32)) - (1 << 31) for p in chosen)
    chosen.sort(key=lambda p: (p["seq"] - base) % (1 << 32))
    data, expected = b"", 0
    for p in chosen:
        relative = (p["seq"] - base) % (1 << 32)
        assert relative == expected, f"gap in pid {pid} {direction}: segment at {relative}, expected {expected}"
        data += p["plaintext"]
        expected += len(p["plaintext"])
    return data, chosen


def test_curl_and_python_plaintext_joined_to_connection_pid_and_cgroup(agents, cgroups, certificate, tmp_path):
    require(subprocess.run(["which", "curl"], capture_output=True).returncode == 0, "curl is not installed")
    server_cgroup, server_cgroup_id = cgroups.make("tls-server")
    client_cgroup, client_cgroup_id = cgroups.make("tls-client")
    # Started before the agent: found by the initial scan of /proc.
    server = Server(certificate, server_cgroup)
    try:
        agent = agents(tmp_path / "data")
        report = wait_hooked(agent, server.proc.pid)
        assert report["enabled"] is True
        secret = "s3cret-" + uuid.uuid4().hex[:8]
        # Started after the agent: curl (SSL_write/SSL_read) and a Python client (SSL_write_ex/SSL_read_ex).
        curl = subprocess.Popen(
            Cgroups.wrap(client_cgroup, ["curl", "-sk", "--max-time", "20", "-H", f"X-Secret: {secret}",
                                         "--data-binary", "curl-body-42", f"https://127.0.0.1:{server.port}/curl/path"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = curl.communicate(timeout=30)
        assert out == f"POST /curl/path secret={secret} len=12 sum={sum(b'curl-body-42')}", err
        python_client = subprocess.Popen(
            Cgroups.wrap(client_cgroup, [sys.executable, TLS_TRAFFIC, "client", str(server.port), secret, "/py/path",
                                         "0", "3"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = python_client.communicate(timeout=30)
        assert out.splitlines() == [f"GET /py/path?i={i} secret={secret} len=0 sum=0" for i in range(3)], err
        time.sleep(0.5)
        assert agent.stop() == 0
    finally:
        server.stop()

    packets = tls_segments(tmp_path / "data")
    # curl's side: the request it wrote and the response it read, on its connection to the server.
    request, sent = stream(packets, curl.pid, "outbound", dport=server.port)
    assert request.startswith(b"POST /curl/path HTTP/1.1\r\n")
    assert f"X-Secret: {secret}\r\n".encode() in request
    assert request.endswith(b"\r\n\r\ncurl-body-42")
    assert {p["cgroup_id"] for p in sent} == {client_cgroup_id}
    assert {(p["src"], p["dst"]) for p in sent} == {("127.0.0.1", "127.0.0.1")}
    client_port = sent[0]["sport"]
    response, received = stream(packets, curl.pid, "inbound", sport=server.port)
    assert response.startswith(b"HTTP/1.0 200 OK\r\n") or response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(f"POST /curl/path secret={secret} len=12 sum={sum(b'curl-body-42')}".encode())
    assert {(p["sport"], p["dport"]) for p in received} == {(server.port, client_port)}

    # The server's side of the same connection: the same bytes, the same 5-tuple, its own pid and cgroup.
    server_read, server_in = stream(packets, server.proc.pid, "inbound", sport=client_port)
    assert server_read == request
    assert {p["cgroup_id"] for p in server_in} == {server_cgroup_id}
    server_wrote, _ = stream(packets, server.proc.pid, "outbound", dport=client_port)
    assert server_wrote == response

    # The Python client's keep-alive connection: three requests in order.
    python_request, python_sent = stream(packets, python_client.pid, "outbound", dport=server.port)
    positions = [python_request.find(f"GET /py/path?i={i} HTTP/1.1\r\n".encode()) for i in range(3)]
    assert -1 not in positions and positions == sorted(positions), python_request[:400]
    assert {p["cgroup_id"] for p in python_sent} == {client_cgroup_id}

    # tshark decodes the plaintext as HTTP once the TLS interface is taken alone (the ciphertext of the same
    # connection shares its addresses and ports on the packet interface).
    plain = tmp_path / "tls.pcapng"
    for i, segment in enumerate(segments(tmp_path / "data")):
        part = tmp_path / f"tls-{i}.pcapng"
        run("tshark", "-r", segment, "-Y", 'frame.interface_name == "fathom-ebpf_tls"', "-w", str(part))
    run("mergecap", "-w", str(plain), *[str(tmp_path / f"tls-{i}.pcapng") for i in range(len(segments(tmp_path / "data")))])
    fields = run("tshark", "-r", str(plain), "-Y", "http.request", "-T", "fields", "-e", "tcp.srcport",
                 "-e", "tcp.dstport", "-e", "http.request.method", "-e", "http.request.uri",
                 "-e", "http.request.line").stdout
    assert f"{client_port}\t{server.port}\tPOST\t/curl/path\t" in fields, fields
    assert f"X-Secret: {secret}" in fields


def test_connection_opened_before_the_agent_is_joined_in_order(agents, cgroups, certificate, tmp_path):
    """A keep-alive connection opened before the agent started: its later requests are joined to it, in order and
    without a gap, on both sides. Its socket has no cookie until the agent sees its first packet, after the first
    record: the stream must go on, not start again."""
    server_cgroup, _ = cgroups.make("tls-early-server")
    client_cgroup, client_cgroup_id = cgroups.make("tls-early-client")
    server = Server(certificate, server_cgroup)
    secret = "early-" + uuid.uuid4().hex[:8]
    client = subprocess.Popen(
        Cgroups.wrap(client_cgroup, [sys.executable, TLS_TRAFFIC, "client", str(server.port), secret, "/early",
                                     "0", "4", "pause"]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == f"GET /early?i=0 secret={secret} len=0 sum=0"
        agent = agents(tmp_path / "data")
        wait_hooked(agent, client.pid)
        wait_hooked(agent, server.proc.pid)
        out, err = client.communicate("go\n", timeout=30)
        assert out.splitlines() == [f"GET /early?i={i} secret={secret} len=0 sum=0" for i in range(1, 4)], err
        time.sleep(0.5)
        assert agent.stop() == 0
    finally:
        client.kill()
        server.stop()
    packets = tls_segments(tmp_path / "data")
    sent, chosen = stream(packets, client.pid, "outbound", dport=server.port)
    assert {p["cgroup_id"] for p in chosen} == {client_cgroup_id}
    client_port = chosen[0]["sport"]
    received, _ = stream(packets, server.proc.pid, "inbound", sport=client_port)
    # The server was already waiting inside SSL_read for request 1 when the probes were attached: that call's entry
    # was never seen, so its plaintext cannot be. The client's write of it started after: it is there.
    for data, first in ((sent, 1), (received, 2)):
        positions = [data.find(f"GET /early?i={i} HTTP/1.1\r\n".encode()) for i in range(first, 4)]
        assert -1 not in positions and positions == sorted(positions), data[:400]
        assert b"GET /early?i=0 " not in data


def test_one_mebibyte_body_arrives_whole_and_in_order(agents, cgroups, certificate, tmp_path):
    server_cgroup, _ = cgroups.make("tls-big-server")
    client_cgroup, _ = cgroups.make("tls-big-client")
    server = Server(certificate, server_cgroup)
    size = 1 << 20
    try:
        agent = agents(tmp_path / "data")
        wait_hooked(agent, server.proc.pid)
        client = subprocess.Popen(
            Cgroups.wrap(client_cgroup, [sys.executable, TLS_TRAFFIC, "client", str(server.port), "big", "/upload",
                                         str(size), "2"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = client.communicate(timeout=60)
        body = (b"0123456789" * (size // 10 + 1))[:size]
        assert out.splitlines()[-1] == f"POST /upload secret=big len={size} sum={sum(body)}", err
        time.sleep(0.5)
        metrics = agent.metrics()
        assert agent.stop() == 0
    finally:
        server.stop()
    assert metrics.get("fathom_tls_truncated_calls_total", 0) == 0
    packets = tls_segments(tmp_path / "data")
    sent, _ = stream(packets, client.pid, "outbound", dport=server.port)
    received, _ = stream(packets, server.proc.pid, "inbound", dport=server.port)
    for data in (sent, received):
        assert data.index(b"GET /upload?i=0 ") < data.index(b"GET /upload?i=1 ") < data.index(b"POST /upload ")
        assert data.endswith(b"\r\n\r\n" + body)


def test_tls_off_and_status(agents, tmp_path):
    agent = agents(tmp_path / "data", "--tls", "off")
    report = json.loads(agent.get("/tls/targets"))
    assert report == {"enabled": False, "reason": "--tls off was asked for", "targets": []}
    out = run(FATHOM, "tls-status", "--agent", f"127.0.0.1:{agent.port}").stdout
    assert "TLS plaintext capture is off: --tls off was asked for" in out
    assert agent.stop() == 0


def test_the_agent_does_not_hook_its_own_executable(agents, tmp_path):
    """fathom carries BoringSSL (swift-nio-ssl): its own TLS is the agent's traffic, and no probe goes into its code."""
    agent = agents(tmp_path / "data")
    deadline = time.monotonic() + 20
    own = []
    while not own and time.monotonic() < deadline:
        own = [t for t in json.loads(agent.get("/tls/targets"))["targets"] if t["pid"] == agent.proc.pid]
        time.sleep(0.2)
    assert own, "the agent's own process is listed"
    assert [(t["kind"], t["hooked"]) for t in own] == [("fathom", False)], own
    assert "fathom itself" in own[0]["detail"]
    assert f"file={os.path.realpath(FATHOM)} " not in agent.output(), "no probes attached to fathom's executable"
    assert agent.stop() == 0


def test_probe_placement_reads_the_file_not_the_probed_code(agents, tmp_path):
    """The kernel writes a uprobe's INT3 into every mapping of the file that may execute, read-only ones included:
    while probes are attached, the placement must still come from the file's own bytes."""
    libssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
    require(os.path.exists(libssl), "no libssl 3 on this machine")
    before = run(FATHOM, "tls-status", "--probes", libssl).stdout
    holder = subprocess.Popen([sys.executable, "-c", "import ssl, time; print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        agent = agents(tmp_path / "data")
        wait_hooked(agent, holder.pid)
        assert run(FATHOM, "tls-status", "--probes", libssl).stdout == before
        assert agent.stop() == 0
    finally:
        holder.kill()
        holder.wait()


def test_node_static_openssl_client(agents, cgroups, certificate, tmp_path):
    require(subprocess.run(["which", "node"], capture_output=True).returncode == 0, "node is not installed")
    server_cgroup, _ = cgroups.make("tls-node-server")
    client_cgroup, client_cgroup_id = cgroups.make("tls-node-client")
    server = Server(certificate, server_cgroup)
    try:
        agent = agents(tmp_path / "data")
        wait_hooked(agent, server.proc.pid)
        secret = "node-" + uuid.uuid4().hex[:8]
        client = subprocess.Popen(
            Cgroups.wrap(client_cgroup, ["node", os.path.join(os.path.dirname(__file__), "tls_client.js"),
                                         str(server.port), secret, "3"]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = [client.stdout.readline().strip() for _ in range(3)]
            assert lines == [f"POST /node/{i} secret={secret} len=11 sum={sum(f'node-body-{i}'.encode())}"
                             for i in range(3)], client.stderr.read() if client.poll() is not None else lines
            report = wait_hooked(agent, client.pid)
        finally:
            client.communicate(input="", timeout=60)
        time.sleep(0.5)
        assert agent.stop() == 0
    finally:
        server.stop()
    node_targets = [t for t in report["targets"] if t["pid"] == client.pid]
    assert node_targets and node_targets[0]["hooked"] and node_targets[0]["library"].endswith("node"), report
    # The first request too: Node retries it while the handshake completes and flushes it after reading the
    # session tickets, by when it has freed the plaintext (the write's return probe takes it before).
    packets = tls_segments(tmp_path / "data")
    request, sent = stream(packets, client.pid, "outbound", dport=server.port)
    positions = [request.find(f"POST /node/{i} HTTP/1.1\r\n".encode()) for i in range(3)]
    assert -1 not in positions and positions == sorted(positions), request[:400]
    assert f"X-Secret: {secret}".encode() in request and request.endswith(b"node-body-2")
    assert {p["cgroup_id"] for p in sent} == {client_cgroup_id}
