"""Issue 7 (HTTP API) against real captured traffic: the seeds' queries over calls dissected live."""
import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from conftest import TRAFFIC, in_netns, run

# The agent records the whole machine: scope every assertion to the test's own server.
SERVER = "10.213.7.2"
SCOPE = f'dst.ip == "{SERVER}"'


CLIENT_CPU = "1" if len(os.sched_getaffinity(0)) > 1 else "0"


@pytest.fixture
def checkout_traffic(hosts, agents, tmp_path):
    """An agent, and a client in host a calling a server in host b: 6 checkouts (2 fail with 503), 3 carts."""
    agent = agents(tmp_path / "data", "--capture", "ebpf")
    # Client and server on different CPUs (where there are two): requests and responses land in different rings and
    # must still reach the dissector in time order.
    server = subprocess.Popen(["taskset", "-c", "0"] + in_netns(hosts.b, [sys.executable, TRAFFIC, "http-server", hosts.b4, "8080", "60"]),
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    base = f"http://{hosts.b4}:8080"
    urls = [f"{base}/api/v1/checkout?status={503 if i % 3 == 0 else 200}" for i in range(6)]
    urls += [f"{base}/api/v1/cart?status=200" for _ in range(3)]
    for url in urls:
        run("taskset", "-c", CLIENT_CPU, *in_netns(hosts.a, ["curl", "-s", "-o", "/dev/null", "-H", "Authorization: Bearer top-secret", url]))
    assert hosts.b4 == SERVER
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # live dissection follows the recording within a fraction of a second
        if calls(agent, kfl=SCOPE)["total"] >= len(urls):
            break
        time.sleep(0.2)
    yield agent
    server.kill()
    server.wait()


def calls(agent, **params):
    return json.loads(agent.get("/mcp/calls?" + urllib.parse.urlencode(params)))


def test_seed_drill_down_queries_return_exactly_the_calls_driven(checkout_traffic):
    agent = checkout_traffic
    boundaries = json.loads(agent.get("/mcp/data-boundaries"))["nodes"][0]
    assert boundaries["calls"]["count"] >= 9 and boundaries["live_dissection"] is True
    assert calls(agent, kfl=SCOPE)["total"] == 9
    assert boundaries["recording"]["segments"] >= 1

    failed = calls(agent, kfl="response.status==503", format="full")
    assert [(c["method"], c["path"], c["status"]) for c in failed["calls"]] == [("GET", "/api/v1/checkout", 503)] * 2, failed
    assert failed["total"] == 2 and failed["total_is_exact"] is True
    both = calls(agent, kfl='request.path=="/api/v1/checkout" and response.status==503', format="full")
    assert len(both["calls"]) == 2 and not both["truncated"]
    call = both["calls"][0]
    assert call["query"] == "status=503"
    headers = {h["name"].lower(): h["value"] for h in call["request"]["headers"]}
    assert headers["authorization"] == "[redacted]"
    assert {h["name"].lower(): h["value"] for h in call["response"]["headers"]}["set-cookie"] == "[redacted]"
    assert "top-secret" not in json.dumps(both)
    assert calls(agent, kfl='path == "/api/v1/cart"')["returned"] == 3


def test_pages_with_cursor_and_one_call_by_id(checkout_traffic):
    agent = checkout_traffic
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 4, "kfl": SCOPE, **({"cursor": cursor} if cursor else {})}
        page = calls(agent, **params)
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 9 and len(set(seen)) == 9
    ts = [c["ts"] for c in calls(agent, limit=100, kfl=SCOPE)["calls"]]
    assert ts == sorted(ts, reverse=True), "newest first"
    one = json.loads(agent.get(f"/mcp/calls/{seen[0]}"))
    assert one["id"] == seen[0] and one["http"]["version"] == "HTTP/1.1"


def test_stats_group_by_status(checkout_traffic):
    stats = json.loads(checkout_traffic.get("/mcp/stats?" + urllib.parse.urlencode({"group_by": "status", "kfl": SCOPE})))
    counts = {row["group"]: row["count"] for row in stats["groups"]}
    assert counts == {"200": 7, "503": 2}
    assert next(r for r in stats["groups"] if r["group"] == "503")["error_rate"] == 1.0


def test_errors_say_what_is_valid(checkout_traffic):
    agent = checkout_traffic
    url = f"http://127.0.0.1:{agent.port}/mcp/calls?" + urllib.parse.urlencode({"kfl": "response.stauts == 503"})
    result = run("curl", "-s", "-w", "\n%{http_code}", url)
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "400"
    error = json.loads(body)["error"]
    assert "did you mean `response.status`" in error["message"] and error["position"]["column"] == 1
    for query, needle in (("limit=0", "from 1 to 1000"), ("format=xml", "compact, full"), ("start=yesterday", "integer")):
        result = run("curl", "-s", "-w", "\n%{http_code}", f"http://127.0.0.1:{agent.port}/mcp/calls?{query}")
        body, status = result.stdout.rsplit("\n", 1)
        assert status == "400" and needle in json.loads(body)["error"]["message"], body
    missing = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{agent.port}/mcp/calls/nope")
    assert missing.stdout == "404"


def test_fields_catalogue(checkout_traffic):
    fields = json.loads(checkout_traffic.get("/mcp/fields"))["fields"]
    by_name = {f["name"]: f for f in fields}
    assert "response.status" in by_name["status_code"]["aliases"]
    assert len(fields) > 100
