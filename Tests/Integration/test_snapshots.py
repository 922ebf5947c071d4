"""Issue 8: snapshots, delayed dissection and pcapng export, driven as the seeds' investigation drives them, over HTTP,
MCP (official Python client) and the CLI, against real captured traffic."""
import asyncio
import collections
import json
import os
import pathlib
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import FATHOM, run
from test_api import SCOPE, SERVER, checkout_traffic  # noqa: F401  (the fixture: an agent with 9 calls driven, 2 failing)

SEED_QUERY = 'request.path=="/api/v1/checkout" and response.status==503'


def api(agent, method, path, body=None, **query):
    """(HTTP status, decoded JSON or raw bytes) of one request to the agent."""
    url = f"http://127.0.0.1:{agent.port}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in kind else raw)


def wait_for(agent, path, key, busy, timeout=60, **query):
    """Polls a status endpoint until `key` leaves the `busy` value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer = api(agent, "GET", path, **query)
        assert status == 200, answer
        if answer[key] != busy or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def snapshot(agent, name, **window):
    status, answer = api(agent, "POST", "/mcp/snapshots", {"name": name, **window})
    assert status == 202 and answer["status"] == "in_progress", answer
    done = wait_for(agent, f"/mcp/snapshots/{name}", "status", "in_progress")
    assert done["status"] == "completed", done
    return done


def dissect(agent, snapshot_name, dissection_name):
    names = {"snapshot_name": snapshot_name, "dissection_name": dissection_name}
    status, answer = api(agent, "POST", "/delayed_dissection.DelayedDissection/Start", names)
    assert status == 202 and answer["state"] == "running", answer
    done = wait_for(agent, "/delayed_dissection.DelayedDissection/GetStatus", "state", "running", **names)
    assert done["state"] == "completed", done
    return done


def calls(agent, **query):
    status, answer = api(agent, "GET", "/mcp/calls", **query)
    assert status == 200, answer
    return answer


def signature(answer):
    return collections.Counter((c["method"], c["path"], c["status"], c["src"]["ip"], c["dst"]["ip"], c["dst"]["port"])
                               for c in answer["calls"])


def tshark(path, *args):
    return run("tshark", "-r", str(path), *args).stdout


def export(agent, tmp_path, name, label, **query):
    status, body = api(agent, "GET", f"/mcp/snapshots/{name}/pcap", **query)
    assert status == 200, body
    path = tmp_path / f"{label}.pcapng"
    path.write_bytes(body)
    return path


def frames(path, display_filter=None):
    """(epoch ns, comment, 4-tuple) of every frame tshark reads."""
    args = ["-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "frame.comment",
            "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport"]
    if display_filter:
        args += ["-Y", display_filter]
    rows = []
    for line in tshark(path, *args).splitlines():
        epoch, comment, src, sport, dst, dport = line.split("|")
        seconds, _, fraction = epoch.partition(".")
        rows.append((int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9]), comment, (src, sport, dst, dport)))
    return rows


def test_seed_flow_over_http_gives_the_calls_live_dissection_gave(checkout_traffic):
    agent = checkout_traffic
    boundaries = api(agent, "GET", "/mcp/data-boundaries")[1]["nodes"][0]
    assert boundaries["recording"]["oldest_ms"] and boundaries["recording"]["newest_ms"]
    node = boundaries["node"]

    manifest = snapshot(agent, "frontend-analysis", duration="10m")
    assert manifest["packets"] > 0 and manifest["bytes"] > 0 and manifest["nodes"] == [node]
    assert manifest["start_ms"] <= boundaries["recording"]["oldest_ms"]
    listed = api(agent, "GET", "/mcp/snapshots")[1]
    assert [s["name"] for s in listed["snapshots"]] == ["frontend-analysis"]
    assert listed["used_bytes"] == manifest["bytes"] <= listed["budget_bytes"]

    status = dissect(agent, "frontend-analysis", "analysis-1")
    assert status["db"] == "frontend-analysis/analysis-1"
    assert status["packets_done"] == status["packets_total"] == manifest["packets"]
    assert status["bytes_done"] == status["bytes_total"] == manifest["bytes"] and status["progress"] == 1
    assert status["calls_found"] >= 9

    db = "frontend-analysis/analysis-1"
    delayed = calls(agent, db=db, kfl=SCOPE, limit=1000, format="full")
    live = calls(agent, kfl=SCOPE, limit=1000, format="full")
    assert delayed["total"] == 9 and signature(delayed) == signature(live)
    failing = calls(agent, db=db, kfl=SEED_QUERY, format="full")
    assert [(c["path"], c["status"]) for c in failing["calls"]] == [("/api/v1/checkout", 503)] * 2
    assert all(c["id"] not in {l["id"] for l in live["calls"]} for c in delayed["calls"]), "own ids per database"
    stats = api(agent, "GET", "/mcp/stats", db=db, group_by="status", kfl=SCOPE)[1]
    assert {g["group"]: g["count"] for g in stats["groups"]} == {"200": 7, "503": 2}

    listing = api(agent, "GET", "/delayed_dissection.DelayedDissection/List", snapshot_name="frontend-analysis")[1]
    assert [d["db"] for d in listing["dissections"]] == [db]
    l7 = {d["db"]: d for d in api(agent, "GET", "/mcp/l7-data-boundaries")[1]["databases"]}
    assert l7[db]["count"] == status["calls_found"] and l7[""]["state"] == "live"

    assert api(agent, "GET", "/mcp/calls", db="frontend-analysis/nope")[0] == 404
    assert api(agent, "GET", "/mcp/calls", db="no-slash")[0] == 400
    assert api(agent, "POST", "/delayed_dissection.DelayedDissection/Delete",
               {"snapshot_name": "frontend-analysis", "dissection_name": "analysis-1"})[0] == 200
    assert api(agent, "GET", "/mcp/calls", db=db)[0] == 404
    assert not (pathlib.Path(agent.data_dir) / "snapshots/frontend-analysis/dissections/analysis-1").exists()


def test_export_opens_in_tshark_with_comments_and_narrows_exactly(checkout_traffic, tmp_path):
    agent = checkout_traffic
    manifest = snapshot(agent, "incident", duration="10m")
    assert api(agent, "GET", "/mcp/snapshots/incident/pcap", kfl=SCOPE)[0] == 400, "kfl needs a dissection first"
    dissect(agent, "incident", "d1")

    whole = frames(export(agent, tmp_path, "incident", "whole"))
    assert len(whole) == manifest["packets"]
    assert all(manifest["start_ms"] * 10**6 <= t <= manifest["end_ms"] * 10**6 + 999_999 for t, _, _ in whole)
    assert all(c.startswith("fathom source=") for _, c, _ in whole)
    ours = [f for f in whole if SERVER in (f[2][0], f[2][2]) and "8080" in (f[2][1], f[2][3])]
    assert ours and all("source=ebpf" in c and "cgroup_id=" in c and "direction=" in c for _, c, _ in ours)
    assert all(" cgroup=/" in c for _, c, _ in ours), "cgroup paths from the table saved with the snapshot"
    assert (pathlib.Path(agent.data_dir) / "snapshots/incident/attribution.json").exists()

    # Time: a window in the middle of our traffic.
    times = sorted(t for t, _, _ in ours)
    start_ms, end_ms = times[len(times) // 4] // 10**6, times[3 * len(times) // 4] // 10**6
    middle = frames(export(agent, tmp_path, "incident", "middle", start=start_ms, end=end_ms))
    assert middle and [f for f in whole if start_ms * 10**6 <= f[0] <= end_ms * 10**6 + 999_999] == middle

    # BPF: exactly the frames of the whole export that match the same filter in tshark's own reading.
    bpf = f"host {SERVER} and tcp port 8080"
    narrowed = frames(export(agent, tmp_path, "incident", "bpf", bpf=bpf))
    assert narrowed == frames(tmp_path / "whole.pcapng", f"ip.addr=={SERVER} && tcp.port==8080") == ours
    status, error = api(agent, "GET", "/mcp/snapshots/incident/pcap", bpf="tcp port nonsense")
    assert status == 400 and "BPF filter" in error["error"]["message"]

    # KFL: the connections of the three cart calls, and nothing else.
    carts = calls(agent, db="incident/d1", kfl='path == "/api/v1/cart"')["calls"]
    assert len(carts) == 3
    ports = {str(c["src"]["port"]) for c in carts}
    selected = frames(export(agent, tmp_path, "incident", "kfl", kfl='path == "/api/v1/cart"'))
    expected = [f for f in ours if f[2][1] in ports or f[2][3] in ports]
    assert selected == expected and len({f[2][1] if f[2][3] == "8080" else f[2][3] for f in selected}) == 3


def test_bad_requests_are_refused_and_write_nothing(checkout_traffic):
    agent = checkout_traffic
    snapshots_dir = pathlib.Path(agent.data_dir) / "snapshots"
    for body, needle in (
        ({"name": "../escape", "duration": "1m"}, "must not start"),
        ({"name": "a/b", "duration": "1m"}, "`/`"),
        ({"name": "", "duration": "1m"}, "empty"),
        ({"name": "x" * 65, "duration": "1m"}, "at most 64"),
        ({"name": "old", "start": 1000, "end": 2000}, "no packets"),
        ({"name": "bad-duration", "duration": "an hour"}, "duration"),
        ({"name": "both", "duration": "1m", "start": 1}, "either"),
    ):
        status, answer = api(agent, "POST", "/mcp/snapshots", body)
        assert status == 400 and needle in answer["error"]["message"], (body, answer)
    assert list(snapshots_dir.iterdir()) == []
    snapshot(agent, "once", duration="10m")
    status, answer = api(agent, "POST", "/mcp/snapshots", {"name": "once", "duration": "10m"})
    assert status == 400 and "exists" in answer["error"]["message"]
    assert [p.name for p in snapshots_dir.iterdir()] == ["once"]
    assert api(agent, "GET", "/mcp/snapshots/missing")[0] == 404
    assert api(agent, "DELETE", "/mcp/snapshots/missing")[0] == 404
    status, answer = api(agent, "POST", "/delayed_dissection.DelayedDissection/Start",
                         {"snapshot_name": "once", "dissection_name": "../d"})
    assert status == 400 and "dissection name" in answer["error"]["message"]


def test_budget_refuses_a_window_that_does_not_fit(agents, tmp_path):
    agent = agents(tmp_path / "data", "--capture", "ebpf", "--snapshot-budget-bytes", "4096")
    for _ in range(20):
        api(agent, "GET", "/healthz")  # traffic of its own to record
    time.sleep(0.5)
    status, answer = api(agent, "POST", "/mcp/snapshots", {"name": "big", "duration": "10m"})
    assert status == 400 and "budget" in answer["error"]["message"], answer
    assert list((tmp_path / "data/snapshots").iterdir()) == []


def test_snapshot_survives_retention_and_concurrent_snapshots_agree(agents, tmp_path):
    agent = agents(tmp_path / "data", "--capture", "ebpf", "--segment-bytes", "65536", "--retention-bytes", "262144",
                   "--segment-seconds", "1")
    for _ in range(30):
        api(agent, "GET", "/healthz")
    time.sleep(1.5)
    end_ms = int(time.time() * 1000)
    names = [f"c{i}" for i in range(3)]
    for name in names:  # three at once over the same window
        assert api(agent, "POST", "/mcp/snapshots", {"name": name, "start": end_ms - 600_000, "end": end_ms})[0] == 202
    done = [wait_for(agent, f"/mcp/snapshots/{n}", "status", "in_progress") for n in names]
    assert all(d["status"] == "completed" for d in done), done
    assert len({d["packets"] for d in done}) == 1 and done[0]["packets"] > 0
    before = frames(export(agent, tmp_path, "c0", "before"))

    # Drive the recording past its budget until the snapshot's window is gone from it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for _ in range(50):
            api(agent, "GET", "/metrics")
        oldest = api(agent, "GET", "/mcp/data-boundaries")[1]["nodes"][0]["recording"]["oldest_ms"]
        if oldest and oldest > end_ms:
            break
    assert oldest > end_ms, "retention did not move past the snapshot's window"
    assert api(agent, "GET", "/mcp/snapshots/c0")[1]["status"] == "completed"
    assert frames(export(agent, tmp_path, "c0", "after")) == before


def test_delete_while_dissecting_stops_it_cleanly(checkout_traffic):
    agent = checkout_traffic
    snapshot(agent, "doomed", duration="10m")
    names = {"snapshot_name": "doomed", "dissection_name": "d"}
    assert api(agent, "POST", "/delayed_dissection.DelayedDissection/Start", names)[0] == 202
    assert api(agent, "DELETE", "/mcp/snapshots/doomed")[0] == 200
    assert api(agent, "GET", "/delayed_dissection.DelayedDissection/GetStatus", **names)[0] == 404
    assert api(agent, "GET", "/mcp/calls", db="doomed/d")[0] == 404
    time.sleep(0.5)
    assert not (pathlib.Path(agent.data_dir) / "snapshots/doomed").exists(), "nothing written after deletion"
    assert api(agent, "GET", "/healthz")[0] == 200


def test_restart_keeps_completed_and_fails_interrupted(checkout_traffic, agents):
    agent = checkout_traffic
    kept = snapshot(agent, "kept", duration="10m")
    dissect(agent, "kept", "d1")
    assert agent.stop() == 0
    root = pathlib.Path(agent.data_dir) / "snapshots"
    # What an agent killed during creation and dissection leaves behind.
    (root / "cut-short/packets").mkdir(parents=True)
    (root / "cut-short/packets/000000.pcapng").write_bytes(b"\0" * 64)
    (root / "cut-short/manifest.json").write_text(json.dumps(
        dict(kept, name="cut-short", status="in_progress", bytes=64, packets=1, files=["000000.pcapng"])))
    (root / "garbled").mkdir()
    (root / "garbled/manifest.json").write_text("{not json")
    status_path = root / "kept/dissections/d1/status.json"
    running = dict(json.loads(status_path.read_text()), state="running", dissection_name="d2", db="kept/d2")
    (root / "kept/dissections/d2").mkdir()
    (root / "kept/dissections/d2/status.json").write_text(json.dumps(running))

    again = agents(agent.data_dir, "--capture", "ebpf")
    assert api(again, "GET", "/mcp/snapshots/kept")[1] == kept
    assert calls(again, db="kept/d1", kfl=SCOPE)["total"] == 9
    failed = api(again, "GET", "/mcp/snapshots/cut-short")[1]
    assert failed["status"] == "failed" and "interrupted" in failed["reason"] and failed["bytes"] == 0
    assert not (root / "cut-short/packets").exists()
    garbled = api(again, "GET", "/mcp/snapshots/garbled")[1]
    assert garbled["status"] == "failed" and "manifest" in garbled["reason"]
    assert api(again, "DELETE", "/mcp/snapshots/garbled")[0] == 200 and not (root / "garbled").exists()
    d2 = api(again, "GET", "/delayed_dissection.DelayedDissection/GetStatus", snapshot_name="kept", dissection_name="d2")[1]
    assert d2["state"] == "failed" and "interrupted" in d2["reason"]


def test_seed_flow_over_mcp(checkout_traffic, tmp_path):
    from test_mcp import with_session

    agent = checkout_traffic

    async def body(session, init):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for name in ("create_snapshot", "get_snapshot", "list_snapshots", "export_snapshot_pcap", "start_snapshot_dissection",
                     "get_snapshot_dissection_status", "list_snapshot_dissections", "get_l7_data_boundaries"):
            assert tools[name].output_schema and tools[name].input_schema["type"] == "object", name
        assert tools["get_snapshot"].annotations.read_only_hint is True
        assert tools["delete_snapshot"].annotations.destructive_hint is True

        created = await session.call_tool("create_snapshot", {"name": "mcp-analysis", "duration": "10m", "wait_seconds": 30})
        assert not created.is_error and created.structured_content["status"] == "completed", created
        listed = await session.call_tool("list_snapshots", {})
        assert [s["name"] for s in listed.structured_content["snapshots"]] == ["mcp-analysis"]
        bad = await session.call_tool("create_snapshot", {"name": "../x", "duration": "1m"})
        assert bad.is_error and "must not start" in bad.content[0].text

        reports = []

        async def progress(done, total, message):
            reports.append((done, total, message))

        started = await session.call_tool("start_snapshot_dissection",
                                          {"snapshot_name": "mcp-analysis", "dissection_name": "a1", "wait_seconds": 30},
                                          progress_callback=progress)
        assert reports and reports[-1][0] == reports[-1][1] == started.structured_content["bytes_total"], reports
        assert "calls found" in reports[-1][2]
        assert started.structured_content["state"] == "completed" and started.structured_content["calls_found"] >= 9
        status = await session.call_tool("get_snapshot_dissection_status", {"snapshot_name": "mcp-analysis", "dissection_name": "a1"})
        assert status.structured_content["db"] == "mcp-analysis/a1"
        dissections = await session.call_tool("list_snapshot_dissections", {"snapshot_name": "mcp-analysis"})
        assert [d["dissection_name"] for d in dissections.structured_content["dissections"]] == ["a1"]
        failing = await session.call_tool("list_api_calls", {"db": "mcp-analysis/a1", "kfl": SEED_QUERY})
        assert [(c["path"], c["status"]) for c in failing.structured_content["calls"]] == [("/api/v1/checkout", 503)] * 2
        l7 = await session.call_tool("get_l7_data_boundaries", {})
        assert "mcp-analysis/a1" in {d["db"] for d in l7.structured_content["databases"]}

        exported = await session.call_tool("export_snapshot_pcap", {"name": "mcp-analysis", "bpf": f"host {SERVER}"})
        assert not exported.is_error and exported.structured_content["url"].startswith("http://127.0.0.1:")
        assert len(json.dumps(exported.structured_content)) < 4096, "a URL, never the bytes"
        return exported.structured_content

    exported = with_session(agent, body)
    path = tmp_path / "mcp.pcapng"
    with urllib.request.urlopen(exported["url"], timeout=60) as response:
        path.write_bytes(response.read())
    rows = frames(path)
    assert rows and all(SERVER in (r[2][0], r[2][2]) for r in rows)


def test_cli_snapshot_commands(checkout_traffic, tmp_path):
    agent = checkout_traffic
    url = ["--url", f"http://127.0.0.1:{agent.port}"]
    created = json.loads(run(FATHOM, "snapshot", "create", "cli", "--duration", "10m", "--wait", *url).stdout)
    assert created["status"] == "completed"
    assert [s["name"] for s in json.loads(run(FATHOM, "snapshot", "list", *url).stdout)["snapshots"]] == ["cli"]
    assert json.loads(run(FATHOM, "snapshot", "get", "cli", *url).stdout)["packets"] == created["packets"]
    dissection = json.loads(run(FATHOM, "snapshot", "dissect", "cli", "d", "--wait", *url).stdout)
    assert dissection["state"] == "completed"
    out = tmp_path / "cli.pcapng"
    run(FATHOM, "snapshot", "export", "cli", "-o", str(out), "--bpf", f"host {SERVER}", *url)
    assert frames(out) == frames(export(agent, tmp_path, "cli", "http", bpf=f"host {SERVER}"))
    failed = run(FATHOM, "snapshot", "get", "nope", *url, check=False)
    assert failed.returncode != 0 and "no snapshot named" in failed.stderr
    run(FATHOM, "snapshot", "delete", "cli", *url)
    assert json.loads(run(FATHOM, "snapshot", "list", *url).stdout)["snapshots"] == []
