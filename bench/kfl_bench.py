"""KFL over the calls store, against SQLite running the equivalent hand-written SQL on the same database file.

Builds (once, cached at $KFL_BENCH_DB) a store of $KFL_BENCH_CALLS generated calls with QueryBench, then reports:
p50 latency of selective indexed queries (a page of 100, newest first) and the full-scan evaluation rate of a filter
nothing can push down, each beside python3's sqlite3 running the same query by hand. Ratios are Fathom / SQLite
(latency: lower is better; rate: higher is better).

    swift build -c release --product QueryBench && python3 bench/kfl_bench.py
"""
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, os.environ.get("QUERY_BENCH", ".build/release/QueryBench"))
CALLS = int(os.environ.get("KFL_BENCH_CALLS", "1000000"))
DB = os.environ.get("KFL_BENCH_DB", os.path.join(tempfile.gettempdir(), f"fathom-kfl-bench-{CALLS}.db"))
# One core, as the targets are per core.
CPU = ["taskset", "-c", "0"]

# The same queries as QueryBench's, written by hand against the store's columns.
SQL = {
    "selective": ("SELECT seq, call FROM calls WHERE path = '/api/v1/checkout' AND status = 503 AND dst_name = 'checkout-7' "
                  "ORDER BY seq DESC LIMIT 100"),
    "window": "SELECT seq, call FROM calls WHERE ts > ? AND status = 503 ORDER BY seq DESC LIMIT 100",
    "scan_columns": ("SELECT count(*) FROM calls WHERE instr(path, 'checkout') > 0 "
                     "AND CAST(round(latency_ms * 1000) AS INTEGER) > 300000"),
}


def sqlite_figures(window_start):
    connection = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    connection.execute("PRAGMA mmap_size = 4294967296")
    figures = {}
    for name in ("selective", "window"):
        arguments = (window_start,) if name == "window" else ()
        times = []
        for _ in range(51):
            start = time.perf_counter()
            rows = connection.execute(SQL[name], arguments).fetchall()
            times.append(time.perf_counter() - start)
        figures[name] = {"p50_ms": statistics.median(times) * 1000, "returned": len(rows)}
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        matched = connection.execute(SQL["scan_columns"]).fetchone()[0]
        best = min(best, time.perf_counter() - start)
    figures["scan_columns"] = {"calls_per_s": CALLS / best, "matched": matched}
    return figures


def main():
    if not os.path.exists(BENCH):
        sys.exit(f"{BENCH} missing: run `swift build -c release --product QueryBench` first")
    output = subprocess.run(CPU + [BENCH, DB, str(CALLS)], capture_output=True, text=True, check=True).stdout
    fathom = {entry["name"]: entry for entry in map(json.loads, output.splitlines())}
    # QueryBench's `now()` is one millisecond past the last call; the window is its last 10 s.
    window_start = 1_700_000_000_000 + CALLS - 10_000
    theirs = subprocess.run(CPU + [sys.executable, __file__, "--sqlite", str(window_start)], capture_output=True, text=True,
                            check=True).stdout
    sqlite = json.loads(theirs)

    print(f"KFL over a store of {CALLS:,} calls ({DB}, {os.path.getsize(DB) / 1e6:.0f} MB), one core")
    if "insert" in fathom:
        print(f"  ingest: {fathom['insert']['calls_per_s'] / 1e3:.0f} k calls/s (batches of {fathom['insert']['batch']})")
    for name in ("selective", "window"):
        ours, reference = fathom[name], sqlite[name]
        assert ours["returned"] == reference["returned"], (name, ours, reference)
        print(f"  {name}: p50 {ours['p50_ms']:.2f} ms  vs SQLite {reference['p50_ms']:.2f} ms  "
              f"(ratio {ours['p50_ms'] / reference['p50_ms']:.2f}; target < 50 ms)  {ours['expression']}")
    ours, reference = fathom["scan_columns"], sqlite["scan_columns"]
    assert ours["matched"] == reference["matched"], (ours, reference)
    print(f"  full scan: {ours['calls_per_s'] / 1e6:.2f} M calls/s  vs SQLite {reference['calls_per_s'] / 1e6:.2f} M calls/s  "
          f"(ratio {ours['calls_per_s'] / reference['calls_per_s']:.2f}; target >= 2 M/s)  {ours['expression']}")
    record = fathom["scan_record"]
    print(f"  full scan reading headers: {record['calls_per_s'] / 1e6:.2f} M calls/s (SQLite cannot read the binary "
          f"records)  {record['expression']}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sqlite":
        print(json.dumps(sqlite_figures(int(sys.argv[2]))))
    else:
        main()
