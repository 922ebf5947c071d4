"""`make bench`: live dissection throughput, HTTP/1.1 calls per second per core of the agent's own CPU, without loss.

nginx serves a file (4 KB, or LIVE_BODY_BYTES) inside a network namespace of its own and wrk loads it over loopback (keep-alive, a few
connections) for a bounded time. Every call is recorded at both local sockets (client and server) and stored once;
calls are counted by their path, so other traffic on the machine does not count (its capture cost does, a little).
Figures per run: wrk's completed requests and rate; the agent's CPU seconds over the run, up to the moment its
dissection has caught up (the whole process: capture, recording, dissection, calls database); calls per agent CPU
second; and the loss check: calls stored with status 200 against wrk's completed requests, ring losses, feed
overflows (read back from the recording instead of memory: not a loss) and dissection lag.
"""
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, metrics, median  # noqa: E402

FATHOM = os.path.join(ROOT, os.environ.get("FATHOM", ".build/release/fathom"))
SECONDS = int(os.environ.get("LIVE_SECONDS", "10"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = int(os.environ.get("LIVE_CONNECTIONS", "8"))
# Every call's response body is kept as its preview: its size sets what the calls database writes per call.
BODY_BYTES = int(os.environ.get("LIVE_BODY_BYTES", "4000"))
NETNS = "fathom-bench-live"
PORT = 48423
CATCH_UP_SECONDS = 60


def in_netns(command):
    """The command, run inside the benchmark's network namespace."""
    return ["ip", "netns", "exec", NETNS, *command]


def start_nginx(work):
    os.makedirs(f"{work}/www", exist_ok=True)
    with open(f"{work}/www/item.txt", "w") as f:
        f.write("x" * BODY_BYTES + "\n")
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{ listen 127.0.0.1:8080; root {work}/www; }}
}}
""")
    subprocess.run(in_netns(["nginx", "-c", f"{work}/nginx.conf", "-p", work]), check=True)


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


class AnonymousPeak(threading.Thread):
    """The agent's largest anonymous resident memory, sampled every 0.2 s. Its peak RSS (VmHWM) also counts the calls
    database's pages SQLite maps to read them: file pages the kernel can take back, not the agent's own memory."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            try:
                self.peak_kb = max(self.peak_kb, status_kb(self.pid, "RssAnon"))
            except (OSError, StopIteration):
                return


def one_run(work):
    data = os.path.join(work, f"agent-{time.monotonic_ns()}")
    log = open(data + ".log", "w")
    agent = subprocess.Popen(
        # Retention well past the run's recording (~2 GB at 30 K req/s for 8 s): calls live as long as their
        # packets, so the default 2 GiB budget would delete the first calls before they are counted.
        [FATHOM, "agent", "--data-dir", data, "--capture", "ebpf", "--listen", f"127.0.0.1:{PORT}",
         "--retention-bytes", str(16 << 30)], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                before = metrics(PORT)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the agent did not start")
        cpu0 = cpu_seconds(agent.pid)
        anonymous = AnonymousPeak(agent.pid)
        anonymous.start()
        out = subprocess.run(
            in_netns(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "http://127.0.0.1:8080/item.txt"]),
            capture_output=True, text=True, check=True, timeout=SECONDS + 30).stdout
        requests, wrk_seconds = re.search(r"(\d+) requests in ([\d.]+)s", out).groups()
        # Caught up: every recorded packet dissected and the stored count steady.
        deadline = time.monotonic() + CATCH_UP_SECONDS
        stored, steady = -1, 0
        while time.monotonic() < deadline and steady < 3:
            time.sleep(0.5)
            after = metrics(PORT)
            done = after["fathom_dissection_calls_stored_total"]
            steady = steady + 1 if done == stored and after.get("fathom_dissection_lag_seconds", 0) == 0 else 0
            stored = done
        cpu = cpu_seconds(agent.pid) - cpu0
        peak_kb = status_kb(agent.pid, "VmHWM")
        anonymous.done.set()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
        log.close()
    with open(data + ".log") as f:
        warnings = [line.strip() for line in f if " warning " in line or " error " in line]
    with sqlite3.connect(os.path.join(data, "calls.db")) as db:
        ok = db.execute("SELECT count(*) FROM calls WHERE path = '/item.txt' AND status = 200").fetchone()[0]
        total = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    requests = int(requests)
    return {
        "requests": requests, "wrk_rate": requests / float(wrk_seconds), "cpu": cpu, "calls": total, "ok": ok,
        "per_core": ok / cpu if cpu > 0 else 0.0, "missing": max(requests - ok, 0),
        "ring_lost": after.get("fathom_ring_lost_records_total", 0) - before.get("fathom_ring_lost_records_total", 0),
        "overflows": after.get("fathom_dissection_feed_overflows_total", 0),
        "lag": after.get("fathom_dissection_lag_seconds", 0),
        # Where calls can go missing besides the rings: stream gaps and segments read only in part.
        "gaps": after.get("fathom_dissection_gaps_total", 0),
        "unreadable": after.get("fathom_dissection_unreadable_segments_total", 0),
        "warnings": warnings,
        "peak_mb": peak_kb / 1024,
        "anon_mb": anonymous.peak_kb / 1024,
    }


def cleanup(work):
    pid_file = f"{work}/nginx.pid"
    if os.path.exists(pid_file):
        try:
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
    time.sleep(0.5)
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)


def main():
    if os.geteuid() != 0:
        sys.exit("live_dissect.py needs root (eBPF and a network namespace)")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as work:
        os.chmod(work, 0o755)  # nginx workers run as www-data
        subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
        try:
            subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)
            start_nginx(work)
            time.sleep(0.5)
            runs = [one_run(work) for _ in range(RUNS)]
        finally:
            cleanup(work)
    print(f"live dissection benchmark: HTTP/1.1 (nginx, wrk -c{CONNECTIONS}, {BODY_BYTES + 1}-byte responses) over loopback, "
          f"{SECONDS} s x {RUNS} runs")
    print(f"{'run':<5}{'wrk req/s':>11}{'calls ok':>10}{'missing':>9}{'agent CPU s':>13}{'calls/s per core':>18}"
          f"{'ring lost':>11}{'overflows':>11}{'lag s':>7}{'gaps':>7}{'unreadable':>12}{'peak RSS MB':>13}{'anon MB':>9}")
    for i, r in enumerate(runs):
        print(f"{i + 1:<5}{r['wrk_rate']:>11,.0f}{r['ok']:>10,}{r['missing']:>9,}{r['cpu']:>13.2f}"
              f"{r['per_core']:>18,.0f}{r['ring_lost']:>11.0f}{r['overflows']:>11.0f}{r['lag']:>7.2f}"
              f"{r['gaps']:>7.0f}{r['unreadable']:>12.0f}{r['peak_mb']:>13.0f}{r['anon_mb']:>9.0f}")
    print(f"median: {median(r['per_core'] for r in runs):,.0f} HTTP/1.1 calls dissected per second per core of agent CPU "
          f"(wrk offered {median(r['wrk_rate'] for r in runs):,.0f} req/s); "
          f"calls missing in all runs: {sum(r['missing'] for r in runs)}")
    for i, r in enumerate(runs):
        for line in r["warnings"][:5]:
            print(f"run {i + 1}, agent: {line}")


if __name__ == "__main__":
    sys.exit(main())
