"""Issue 7 (L4 flows) against real captured traffic: /mcp/flows, /mcp/flows/summary, and open flows shown while open."""
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import in_netns
from test_api import SCOPE, SERVER, calls, checkout_traffic  # noqa: F401  (the fixture: 9 HTTP calls, 9 connections)


def flows(agent, path="/mcp/flows", **params):
    return json.loads(agent.get(path + "?" + urllib.parse.urlencode(params)))


def status_and_body(agent, path, **params):
    url = f"http://127.0.0.1:{agent.port}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    return predicate()


@pytest.fixture
def closed_flows(checkout_traffic):
    """The checkout agent once its 9 connections are closed and stored (a closed flow lingers 2 s for late ACKs)."""
    agent = checkout_traffic
    assert wait_for(lambda: flows(agent, kfl=SCOPE)["total"] >= 9), flows(agent, kfl=SCOPE)
    return agent


def test_every_connection_is_a_flow_joined_to_its_calls(closed_flows):
    agent = closed_flows
    answer = flows(agent, kfl=SCOPE)
    assert answer["total"] == 9 and answer["total_is_exact"] and not answer["truncated"] and answer["next_cursor"] is None
    for f in answer["flows"]:
        assert (f["transport"], f["proto"], f["dst"]["ip"], f["dst"]["port"]) == ("tcp", "http", SERVER, 8080), f
        assert f["src"]["ip"] == "10.213.7.1" and f["bytes_sent"] > 50 and f["bytes_received"] > 50, f
        assert f["handshake_rtt_ms"] > 0 and f["end_reason"] == "fin" and not f["mid_stream"], f
    # Calls carry the id of the flow they travelled on.
    connection_ids = {c["connection_id"] for c in calls(agent, kfl=SCOPE, format="full")["calls"]}
    assert connection_ids == {f["id"] for f in answer["flows"]}
    # Request bytes of the calls are the client's bytes of the flows (one request per connection).
    assert sum(f["bytes_sent"] for f in answer["flows"]) == sum(
        c["request_size"] for c in calls(agent, kfl=SCOPE, format="full")["calls"])


def test_filters_pages_and_aggregates(closed_flows):
    agent = closed_flows
    assert flows(agent, kfl=SCOPE + ' && transport == "udp"')["total"] == 0
    assert flows(agent, kfl=SCOPE + " && dst.port == 8080 && resets == 0 && bytes > 100")["total"] == 9
    seen, cursor = [], None
    for _ in range(10):
        page = flows(agent, kfl=SCOPE, limit=4, **({"cursor": cursor} if cursor else {}))
        assert page["returned"] <= 4
        seen += [f["id"] for f in page["flows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 9 == len(set(seen))

    every = flows(agent, kfl=SCOPE)["flows"]
    # No cluster here: each end is named by its process (the kernel's connect and listen events say which one owns
    # the socket), and the server is the fixture's Python.
    server = {f["dst"].get("process") for f in every}
    clients = {f["src"].get("process", f["src"]["ip"]) for f in every}
    assert len(server) == 1 and next(iter(server)).startswith("python3"), every[0]
    by_dst = flows(agent, kfl=SCOPE, aggregate="dst")
    assert [g["key"] for g in by_dst["groups"]] == [f"{next(iter(server))}:8080"]
    group = by_dst["groups"][0]
    assert group["flows"] == 9 and group["bytes"] == sum(f["bytes_sent"] + f["bytes_received"] for f in every)
    pair = flows(agent, kfl=SCOPE, aggregate="pair")["groups"]
    assert sorted(g["key"] for g in pair) == sorted(f"{c} -> {next(iter(server))}:8080" for c in clients)
    # Top talkers across the node: sorted by bytes, largest first.
    talkers = flows(agent, aggregate="dst", limit=50)["groups"]
    assert [g["bytes"] for g in talkers] == sorted((g["bytes"] for g in talkers), reverse=True)


def test_summary_totals_rtt_percentiles_and_end_reasons(closed_flows):
    agent = closed_flows
    every = flows(agent, kfl=SCOPE)["flows"]
    summary = flows(agent, "/mcp/flows/summary", kfl=SCOPE)
    totals = summary["totals"]
    assert (totals["flows"], totals["tcp"], totals["udp"], totals["open"]) == (9, 9, 0, 0)
    assert totals["bytes_sent"] == sum(f["bytes_sent"] for f in every)
    assert totals["resets"] == 0 and totals["gap_bytes"] == 0 and totals["mid_stream"] == 0
    rtts = sorted(f["handshake_rtt_ms"] for f in every)
    assert summary["handshake_rtt_ms"]["samples"] == 9
    assert summary["handshake_rtt_ms"]["p50"] == rtts[4] and summary["handshake_rtt_ms"]["p99"] == rtts[8]
    assert summary["end_reasons"] == {"fin": 9}
    assert [g["key"] for g in summary["by_protocol"]] == ["tcp/http"]
    assert [g["key"] for g in summary["by_namespace"]] == ["(no namespace)"]
    assert summary["covers"]["flows_stored"] >= 9 and summary["covers"]["live_dissection"] is True
    assert json.loads(agent.get("/mcp/data-boundaries"))["nodes"][0]["flows"]["count"] >= 9


def test_bad_arguments_say_what_is_valid(closed_flows):
    agent = closed_flows
    status, body = status_and_body(agent, "/mcp/flows", kfl="response.status == 503")
    assert status == 400 and "is a call field, not a flow field" in body["error"]["message"] and "bytes" in body["error"]["message"]
    status, body = status_and_body(agent, "/mcp/flows", kfl="dst.prot == 1")
    assert status == 400 and "did you mean" in body["error"]["message"]
    status, body = status_and_body(agent, "/mcp/flows", aggregate="colour")
    assert status == 400 and "src, dst, pair" in body["error"]["message"]
    status, body = status_and_body(agent, "/mcp/flows/summary", start="yesterday")
    assert status == 400 and "`start` must be an integer" in body["error"]["message"]


LONG_LIVED = r"""
import socket, sys, time
role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
if role == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(1)
    print("ready", flush=True)
    s.settimeout(20); c, _ = s.accept(); c.settimeout(5)
    while time.monotonic() < deadline:
        data = c.recv(4096)
        if not data: break
        c.sendall(data)
else:
    c = socket.create_connection((host, port), timeout=5)
    while time.monotonic() < deadline:
        c.sendall(b"tick " * 20 + b"\n"); c.recv(4096); time.sleep(0.5)
"""


def test_a_long_lived_connection_shows_while_open_and_grows(hosts, agents, tmp_path):
    agent = agents(tmp_path / "data", "--capture", "ebpf")
    port = "9477"
    server = subprocess.Popen(in_netns(hosts.b, [sys.executable, "-c", LONG_LIVED, "server", hosts.b4, port]),
                              stdout=subprocess.PIPE, text=True)
    client = None
    try:
        assert server.stdout.readline().strip() == "ready"
        client = subprocess.Popen(in_netns(hosts.a, [sys.executable, "-c", LONG_LIVED, "client", hosts.b4, port]))
        scope = f'dst.ip == "{hosts.b4}" && dst.port == {port}'

        def open_flow(more_than=0):
            found = [f for f in flows(agent, kfl=scope + ' && end_reason == ""')["flows"] if f["bytes_sent"] > more_than]
            return found[0] if found else None

        first = wait_for(open_flow, timeout=45)  # updates come every 10 s of activity
        assert first, flows(agent, kfl=scope)
        assert first["bytes_sent"] > 0 and first["handshake_rtt_ms"] > 0
        assert flows(agent, "/mcp/flows/summary", kfl=scope)["totals"]["open"] == 1
        grown = wait_for(lambda: open_flow(more_than=first["bytes_sent"]), timeout=45)
        assert grown and grown["id"] == first["id"], "an update replaces the same flow"
        assert flows(agent, kfl=scope)["total"] == 1
    finally:
        for p in (client, server):
            if p:
                p.kill()
                p.wait()
