"""`make bench`: MCP tool-call latency over a store of 1 M calls, over stdio and Streamable HTTP, and the tokens a
call costs in Fathom's compact table against a Kubeshark-like JSON object per call.

Builds the store with `fathom synthetic-store` (the store API live dissection writes with), starts `fathom agent`
on it, then drives both transports with the official Python MCP client. Prints one JSON object per measurement.

    FATHOM=.build/release/fathom python3 bench/mcp_latency.py [CALLS]
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATHOM = os.path.join(ROOT, os.environ.get("FATHOM", ".build/release/fathom"))
CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
RUNS = int(os.environ.get("BENCH_RUNS", "51"))
PORT = 48431
NEWEST = int(time.time() * 1000) + 24 * 3600 * 1000  # after the agent starts: retention keeps them
OLDEST = NEWEST - CALLS + 1  # `synthetic-store` spaces calls 1 ms apart
SELECTIVE = 'request.path == "/api/v1/checkout" && response.status == 503 && dst.name == "checkout-7"'
# A window cut mid-minute at both ends: whole minutes come from rollups, the edges from the calls themselves.
WINDOW = {"start": OLDEST + CALLS // 10 + 12_345, "end": NEWEST - CALLS // 10 - 23_456}
CASES = [
    ("list_api_calls selective", "list_api_calls", {"kfl": SELECTIVE, "limit": 50}),
    ("get_api_stats by status", "get_api_stats", {"group_by": "status"}),
    ("get_api_stats by endpoint", "get_api_stats", {"group_by": "endpoint"}),
    ("get_api_stats window by service", "get_api_stats", {"group_by": "service", **WINDOW}),
    ("get_api_stats selective by endpoint", "get_api_stats", {"kfl": SELECTIVE, "group_by": "endpoint"}),
]


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def percentile(sorted_values, p):
    return sorted_values[max(0, int(p * len(sorted_values) + 0.999999) - 1)]


async def measure(session, transport):
    for name, tool, args in CASES:
        await session.call_tool(tool, args)  # warm the page cache
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            result = await session.call_tool(tool, args)
            times.append((time.perf_counter() - start) * 1000)
            assert not result.is_error, result.content[0].text
        times.sort()
        extra = {"percentiles": result.structured_content["percentiles"]} if tool == "get_api_stats" else {}
        emit(name=name, transport=transport, calls=CALLS, p50_ms=round(percentile(times, 0.5), 2),
             p99_ms=round(percentile(times, 0.99), 2), runs=RUNS, **extra)


async def tokens(session):
    """Bytes/4 per call: the compact table line against Kubeshark's compact call as pretty-printed JSON."""
    result = await session.call_tool("list_api_calls", {"limit": 100})
    calls = result.structured_content["calls"]
    table = result.content[0].text.splitlines()[3:]  # after covers, counts and the header
    kubeshark = [json.dumps({
        "id": c["id"], "ts": c["ts"],
        "src": {"ip": c["src"]["ip"], "port": c["src"]["port"], "pod": c["src"].get("pod", ""), "ns": c["src"].get("namespace", ""),
                "svc": c["src"].get("service", "")},
        "dst": {"ip": c["dst"]["ip"], "port": c["dst"]["port"], "pod": c["dst"].get("pod", ""), "ns": c["dst"].get("namespace", ""),
                "svc": c["dst"].get("service", "")},
        "proto": c["proto"], "method": c["method"], "path": c["path"], "status": c["status"], "latency_ms": c["latency_ms"],
    }, indent=2) for c in calls]
    compact = sum(len(line) + 1 for line in table) / len(table) / 4
    pretty = sum(len(k) + 2 for k in kubeshark) / len(kubeshark) / 4
    emit(name="tokens per call", compact_table=round(compact, 1), kubeshark_json=round(pretty, 1),
         ratio=round(pretty / compact, 2), calls=len(table))


async def over_http():
    async with streamable_http_client(f"http://127.0.0.1:{PORT}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await measure(session, "http")
            await tokens(session)


async def over_stdio():
    params = StdioServerParameters(command=FATHOM, args=["mcp", "--url", f"http://127.0.0.1:{PORT}"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await measure(session, "stdio")


def main():
    workdir = tempfile.mkdtemp(prefix="fathom-mcp-bench-")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    try:
        started = time.monotonic()
        subprocess.run([FATHOM, "synthetic-store", "--db", os.path.join(data, "calls.db"), "--calls", str(CALLS),
                        "--newest-ms", str(NEWEST)], check=True, capture_output=True)
        emit(name="store built", calls=CALLS, seconds=round(time.monotonic() - started, 1))
        agent = subprocess.Popen([FATHOM, "agent", "--data-dir", data, "--listen", f"127.0.0.1:{PORT}", "--no-dissection"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            asyncio.run(over_stdio())
            asyncio.run(over_http())
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
