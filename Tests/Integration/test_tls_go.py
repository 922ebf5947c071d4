"""Go crypto/tls plaintext: a Go HTTPS server (with symbols, started before the agent) and Go clients (stripped with
-s -w, started after it), built with Debian's golang-go. The decrypted HTTP must be in the recording as `ebpf_tls`
segments with the right 5-tuple, pid and cgroup, both directions, in order, and dissect into calls."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import uuid

import pytest

from conftest import FATHOM, Cgroups, free_port, require, run, segments
from test_tls import certificate, stream, tls_segments, wait_hooked  # noqa: F401 (the certificate fixture)

GO_SOURCE = os.path.join(os.path.dirname(__file__), "go_tls", "main.go")


@pytest.fixture(scope="module")
def go_programs(tmp_path_factory):
    """The Go peers built twice: with symbols and stripped (-s -w: no symbol table, no DWARF)."""
    require(shutil.which("go") is not None, "golang-go is not installed")
    out = tmp_path_factory.mktemp("go")
    env = dict(os.environ, HOME=str(out), GOCACHE=str(out / "cache"), GOPATH=str(out / "gopath"), GO111MODULE="off",
               CGO_ENABLED="0")
    with_symbols, stripped = str(out / "gotls"), str(out / "gotls-stripped")
    run("go", "build", "-o", with_symbols, GO_SOURCE, env=env, timeout=300)
    run("go", "build", "-ldflags=-s -w", "-o", stripped, GO_SOURCE, env=env, timeout=300)
    assert ".symtab" not in run("readelf", "-S", stripped).stdout
    return with_symbols, stripped


def go_client(program, cgroup, port, secret, path, count, body, wait):
    cmd = [program, "client", str(port), secret, path, str(count), str(body)] + (["wait"] if wait else [])
    return subprocess.Popen(Cgroups.wrap(cgroup, cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def expected_lines(secret, path, count, body):
    lines = [f"GET {path}?i={i} secret={secret} len=0 sum=0" for i in range(count)]
    if body:
        data = (b"0123456789" * (body // 10 + 1))[:body]
        lines.append(f"POST {path} secret={secret} len={body} sum={sum(data)}")
    return lines


def test_go_client_and_server_plaintext(agents, cgroups, certificate, go_programs, tmp_path):  # noqa: F811
    with_symbols, stripped = go_programs
    server_cgroup, server_cgroup_id = cgroups.make("tls-go-server")
    client_cgroup, client_cgroup_id = cgroups.make("tls-go-client")
    port = free_port()
    server = subprocess.Popen(Cgroups.wrap(server_cgroup, [with_symbols, "server", *certificate, str(port)]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        # The server was started before the agent: found by the initial scan, from its symbol table.
        agent = agents(tmp_path / "data")
        report = wait_hooked(agent, server.pid)
        server_target = next(t for t in report["targets"] if t["pid"] == server.pid)
        assert server_target["kind"] == "go" and "crypto/tls.(*Conn).Write" in server_target["detail"], server_target
        secret = "go-" + uuid.uuid4().hex[:8]
        # The first stripped client: hooked after its exec (from .gopclntab), then let go.
        first = go_client(stripped, client_cgroup, port, secret, "/go/first", 3, 1 << 20, wait=True)
        assert first.stdout.readline().strip() == "started", first.stderr.read()
        report = wait_hooked(agent, first.pid)
        first_target = next(t for t in report["targets"] if t["pid"] == first.pid)
        assert first_target["kind"] == "go" and first_target["hooked"], first_target
        out, err = first.communicate("go\n", timeout=60)
        assert out.splitlines() == expected_lines(secret, "/go/first", 3, 1 << 20), err
        # A second process of the same executable: its probes are already there, so its first request is seen.
        second = go_client(stripped, client_cgroup, port, secret, "/go/second", 1, 0, wait=False)
        out, err = second.communicate(timeout=60)
        assert out.splitlines() == expected_lines(secret, "/go/second", 1, 0), err
        metrics = agent.metrics()
        # Live dissection names the same five calls, although the ciphertext of those connections is recorded too.
        deadline, live = time.monotonic() + 20, []
        while time.monotonic() < deadline and len(live) < 5:
            query = urllib.parse.urlencode({"kfl": 'path.startsWith("/go/")', "limit": 50})
            live = json.loads(agent.get("/mcp/calls?" + query))["calls"]
            time.sleep(0.5)
        assert sorted((c["method"], c["path"], c["status"]) for c in live) == sorted(
            [("GET", "/go/first", 200)] * 3 + [("POST", "/go/first", 200), ("GET", "/go/second", 200)]), live
        assert agent.stop() == 0
    finally:
        server.kill()
        server.wait()
    assert metrics.get("fathom_tls_truncated_calls_total", 0) == 0

    packets = tls_segments(tmp_path / "data")
    body = (b"0123456789" * ((1 << 20) // 10 + 1))[: 1 << 20]
    request, sent = stream(packets, first.pid, "outbound", dport=port)
    positions = [request.find(f"GET /go/first?i={i} HTTP/1.1\r\n".encode()) for i in range(3)]
    assert -1 not in positions and positions == sorted(positions), request[:400]
    assert f"X-Secret: {secret}\r\n".encode() in request
    assert request.endswith(b"\r\n\r\n" + body)
    assert {p["cgroup_id"] for p in sent} == {client_cgroup_id}
    assert {(p["src"], p["dst"]) for p in sent} == {("127.0.0.1", "127.0.0.1")}
    client_port = sent[0]["sport"]
    response, received = stream(packets, first.pid, "inbound", sport=port)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"POST /go/first secret={secret} len={1 << 20} sum={sum(body)}".encode() in response
    assert {(p["sport"], p["dport"]) for p in received} == {(port, client_port)}

    # The server's side of the same connection: the same bytes both ways, its own pid and cgroup.
    server_read, server_in = stream(packets, server.pid, "inbound", sport=client_port)
    assert server_read == request
    assert {p["cgroup_id"] for p in server_in} == {server_cgroup_id}
    server_wrote, _ = stream(packets, server.pid, "outbound", dport=client_port)
    assert server_wrote == response

    # The second client's only request, sent right after its exec.
    second_request, second_sent = stream(packets, second.pid, "outbound", dport=port)
    second_port = second_sent[0]["sport"]
    assert second_request.startswith(b"GET /go/second?i=0 HTTP/1.1\r\n"), second_request[:200]

    # Offline too, the recording dissects into the HTTP calls (method, path, status) of both clients: the plaintext is
    # its own stream beside the ciphertext of the same connections.
    calls = [json.loads(line) for line in run(FATHOM, "dissect", *segments(tmp_path / "data")).stdout.splitlines()]
    http = [(c["method"], c["path"], c["status"], c["src"]["port"], c["dst"]["port"]) for c in calls
            if c["proto"] == "http" and c["dst"]["port"] == port]  # not the test's own calls to the agent
    assert http == [("GET", "/go/first", 200, client_port, port)] * 3 + [("POST", "/go/first", 200, client_port, port),
                                                                         ("GET", "/go/second", 200, second_port, port)], calls

