"""`make bench`, snapshots: a large window isolated, dissected and exported, each against what it costs.

1. Fills the recording with about BENCH_SNAPSHOT_MB (default 1024) of 1400-byte UDP over loopback, then 20 s of
   HTTP/1.1 keep-alive calls (for the dissection figure).
2. Snapshot of the whole window: seconds to complete, and the share of a concurrent 64-byte UDP flood captured while
   it runs, against the same flood alone.
3. Delayed dissection: MB/s over the large snapshot and over an HTTP-only snapshot (calls/s too).
4. Export of the middle half of the window (time-narrowed) and of a BPF-narrowed copy, against editcap -A/-B and
   tcpdump -r … -w … doing the same cut on the same files in the same run.
Everything is bounded in time; the data directory is removed at the end.
"""
import datetime
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATHOM = os.path.join(ROOT, os.environ.get("FATHOM", ".build/release/fathom"))
FLOOD = os.path.join(ROOT, ".build", "bench", "udpflood")
TARGET = int(os.environ.get("BENCH_SNAPSHOT_MB", "1024")) << 20
PORT, FLOOD_PORT, HTTP_PORT = 48431, 47998, 48432


def call(method, path, body=None, timeout=600, **query):
    url = f"http://127.0.0.1:{PORT}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
        return json.loads(raw) if "json" in response.headers.get("Content-Type", "") else raw


def metric(name):
    text = call("GET", "/metrics").decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def flood(seconds, payload, max_packets=50_000_000):
    receiver = subprocess.Popen([FLOOD, "recv", "127.0.0.1", str(FLOOD_PORT), str(seconds + 1)], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    out = subprocess.run([FLOOD, "send", "127.0.0.1", str(FLOOD_PORT), str(seconds), str(max_packets), str(payload)],
                         capture_output=True, text=True, check=True).stdout
    receiver.wait()
    return int(re.match(r"sent (\d+)", out).group(1))


def captured_share(seconds, during=None):
    """Share of a 64-byte flood's datagrams recorded (each at both sockets), with `during` run alongside."""
    time.sleep(0.5)
    before = metric("fathom_captured_packets_total")
    worker = threading.Thread(target=during) if during else None
    if worker:
        threading.Timer(1.0, worker.start).start()
    sent = flood(seconds, 64, max_packets=1_500_000)
    if worker:
        worker.join()
    time.sleep(0.5)
    return min((metric("fathom_captured_packets_total") - before) / (2 * sent), 1.0), sent


def wait(path, key, busy, **query):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        answer = call("GET", path, **query)
        if answer[key] != busy:
            return answer
        time.sleep(0.05)
    raise SystemExit(f"{path} still {busy} after 600 s")


def snapshot(name, **window):
    started = time.monotonic()
    call("POST", "/mcp/snapshots", {"name": name, **window})
    manifest = wait(f"/mcp/snapshots/{name}", "status", "in_progress")
    assert manifest["status"] == "completed", manifest
    return manifest, time.monotonic() - started


def dissect(snapshot_name):
    names = {"snapshot_name": snapshot_name, "dissection_name": "bench"}
    started = time.monotonic()
    call("POST", "/delayed_dissection.DelayedDissection/Start", names)
    status = wait("/delayed_dissection.DelayedDissection/GetStatus", "state", "running", **names)
    assert status["state"] == "completed", status
    return status, time.monotonic() - started


def http_load(seconds):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each answer waits out a delayed ACK
        wbufsize = 1 << 16  # the status line, headers and body leave in one write

        def do_GET(self):
            body = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    count, deadline = 0, time.monotonic() + seconds
    connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT)
    while time.monotonic() < deadline:
        connection.request("GET", f"/api/v1/items/{count % 100}?page={count}")
        connection.getresponse().read()
        count += 1
    connection.close()
    server.shutdown()
    return count


def timed(command):
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - started


def fetch(out, **query):
    """Seconds to download an export of the large snapshot into `out` with curl, and its size."""
    url = f"http://127.0.0.1:{PORT}/mcp/snapshots/large/pcap?" + urllib.parse.urlencode(query)
    seconds = timed(["curl", "-sfo", out, url])
    return seconds, os.path.getsize(out)


def utc(ns):
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def main():
    os.makedirs(os.path.dirname(FLOOD), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", FLOOD, os.path.join(ROOT, "bench", "udpflood.c")], check=True)
    workdir = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR", "/var/tmp"), prefix="fathom-snapshot-bench-")
    data = os.path.join(workdir, "data")
    agent = subprocess.Popen([FATHOM, "agent", "--data-dir", data, "--capture", "ebpf", "--listen", f"127.0.0.1:{PORT}",
                              "--retention-bytes", str(TARGET * 3), "--snapshot-budget-bytes", str(TARGET * 4),
                              "--no-dissection"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        start_ms = int(time.time() * 1000)
        deadline = time.monotonic() + 300
        while call("GET", "/mcp/data-boundaries")["nodes"][0]["recording"]["bytes"] < TARGET and time.monotonic() < deadline:
            flood(3, 1400, max_packets=200_000)
        http_start = int(time.time() * 1000)
        requests = http_load(20)
        time.sleep(1.0)
        end_ms = int(time.time() * 1000)

        alone, _ = captured_share(6)
        big = {}

        def take_big():
            big["manifest"], big["seconds"] = snapshot("large", start=start_ms, end=end_ms)

        during, sent = captured_share(6, during=take_big)
        manifest, seconds = big["manifest"], big["seconds"]
        mb = manifest["bytes"] / 1e6
        print(f"snapshot benchmark: {mb:,.0f} MB window ({manifest['packets']:,} packets) on loopback, one agent")
        print(f"snapshot   {seconds:6.2f} s to complete ({manifest['linked_segments']} segments hard-linked, "
              f"{manifest['cut_segments']} cut); concurrent 64-byte flood captured {during * 100:.2f}% "
              f"(alone {alone * 100:.2f}%, {sent:,} datagrams)")

        status, dissect_seconds = dissect("large")
        print(f"dissection {dissect_seconds:6.2f} s over the large snapshot: {mb / dissect_seconds:7.1f} MB/s "
              f"({status['packets_total'] / dissect_seconds:,.0f} packets/s)")
        http_manifest, _ = snapshot("http", start=http_start, end=end_ms - 1000)
        http_status, http_seconds = dissect("http")
        print(f"dissection {http_seconds:6.2f} s over HTTP/1.1 ({http_manifest['bytes'] / 1e6:,.0f} MB, "
              f"{requests:,} requests driven): {http_manifest['bytes'] / 1e6 / http_seconds:7.1f} MB/s, "
              f"{http_status['calls_found'] / http_seconds:,.0f} calls/s")

        # The middle half of the UDP phase (by packet time: up to the HTTP snapshot's first packet).
        first, last = manifest["first_packet_nanoseconds"], http_manifest["first_packet_nanoseconds"]
        cut_start, cut_end = first + (last - first) // 4, first + 3 * (last - first) // 4
        files = [os.path.join(data, "snapshots", "large", "packets", f) for f in manifest["files"]]
        out = os.path.join(workdir, "out.pcapng")

        # The export travels over loopback, which the agent would record too: pause recording so both tools do
        # only the cut (the export's own recording is a cost of serving it over a captured interface).
        recorded_cut, _ = fetch(out, start=cut_start // 1_000_000, end=cut_end // 1_000_000)
        call("POST", "/capture/pause")
        fathom_cut, exported = fetch(out, start=cut_start // 1_000_000, end=cut_end // 1_000_000)
        env_utc = {**os.environ, "TZ": "UTC"}
        started = time.monotonic()
        for path in files:
            subprocess.run(["editcap", "-A", utc(cut_start), "-B", utc(cut_end), path, out], check=True,
                           capture_output=True, env=env_utc)
        editcap_cut = time.monotonic() - started
        print(f"export     time cut, {exported / 1e6:,.0f} MB out (recording paused; {recorded_cut:.2f} s while recording): "
              f"fathom {fathom_cut:6.2f} s "
              f"({mb / fathom_cut:7.1f} MB/s read), editcap -A/-B {editcap_cut:6.2f} s "
              f"({mb / editcap_cut:7.1f} MB/s) -> fathom {editcap_cut / fathom_cut:.1f}x")

        bpf = f"udp port {FLOOD_PORT}"
        fathom_bpf, exported = fetch(out, bpf=bpf)
        started = time.monotonic()
        for path in files:
            subprocess.run(["tcpdump", "-r", path, "-w", out, bpf], check=True, capture_output=True)
        tcpdump_bpf = time.monotonic() - started
        call("POST", "/capture/resume")
        print(f"export     BPF `{bpf}`, {exported / 1e6:,.0f} MB out: fathom {fathom_bpf:6.2f} s "
              f"({mb / fathom_bpf:7.1f} MB/s read, with per-packet comments), tcpdump -r -w {tcpdump_bpf:6.2f} s "
              f"({mb / tcpdump_bpf:7.1f} MB/s) -> fathom {tcpdump_bpf / fathom_bpf:.1f}x")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(60)
        except subprocess.TimeoutExpired:
            agent.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
