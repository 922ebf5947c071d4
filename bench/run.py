"""`make bench`: the capture cost, measured side by side in one run.

A bounded 64-byte UDP flood over loopback from a sendmmsg sender to a bound receiver, with
(a) no capture, (b) `fathom agent` (eBPF, live dissection on: the default), (c) `fathom agent --no-dissection`
(capture and recording only), (d) `tcpdump -w` to a file on the same disk.
Capture cost is paid in the kernel on the sender's CPU, so the sender's packets/s is the main figure; then the
fraction of packets captured and the capturing process's own CPU seconds per million packets.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, metrics, median  # noqa: E402

FATHOM = os.path.join(ROOT, os.environ.get("FATHOM", ".build/release/fathom"))
FLOOD = os.path.join(ROOT, ".build", "bench", "udpflood")
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
MAX_PACKETS = 20_000_000
PORT = 47999
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def flood():
    receiver = subprocess.Popen([FLOOD, "recv", "127.0.0.1", str(PORT), str(SECONDS + 1)], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    out = subprocess.run([FLOOD, "send", "127.0.0.1", str(PORT), str(SECONDS), str(MAX_PACKETS), "64"],
                         capture_output=True, text=True, check=True).stdout
    receiver.wait()
    sent, seconds = re.match(r"sent (\d+) seconds ([\d.]+)", out).groups()
    return int(sent), float(seconds)


def no_capture():
    sent, seconds = flood()
    return {"pps": sent / seconds, "captured": None, "cpu_per_m": None}


def with_fathom(workdir, *options):
    port = 48421
    agent = subprocess.Popen([FATHOM, "agent", "--data-dir", os.path.join(workdir, "fathom"), "--capture", "ebpf",
                              "--listen", f"127.0.0.1:{port}", "--retention-bytes", str(4 << 30), *options],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                before = metrics(port)
                break
            except OSError:
                time.sleep(0.1)
        cpu0 = cpu_seconds(agent.pid)
        sent, seconds = flood()
        time.sleep(0.5)
        after = metrics(port)
        # Live dissection may still be working through the flood: its CPU counts too, so wait (bounded) for it.
        deadline = time.monotonic() + 30
        while ("--no-dissection" not in options and time.monotonic() < deadline
               and after.get("fathom_dissection_packets_total", 0) - before.get("fathom_dissection_packets_total", 0)
               < after["fathom_captured_packets_total"] - before["fathom_captured_packets_total"]):
            time.sleep(0.5)
            after = metrics(port)
        cpu = cpu_seconds(agent.pid) - cpu0
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    records = after["fathom_captured_packets_total"] - before["fathom_captured_packets_total"]
    lost = after.get("fathom_ring_lost_records_total", 0) - before.get("fathom_ring_lost_records_total", 0)
    if "--no-dissection" not in options:
        # Live dissection must keep up too: everything recorded is dissected (packets_total counts both copies).
        dissected = after.get("fathom_dissection_packets_total", 0) - before.get("fathom_dissection_packets_total", 0)
        print(f"  fathom: {records:.0f} records, {dissected:.0f} dissected when CPU was read", file=sys.stderr)
    # Each datagram is recorded at both local sockets: the sender's egress and the receiver's ingress.
    return {"pps": sent / seconds, "captured": min(records / (2 * sent), 1.0), "cpu_per_m": cpu / sent * 1e6,
            "records": records, "lost": lost, "cpu": cpu, "sent": sent}


def with_tcpdump(workdir):
    path = os.path.join(workdir, "tcpdump.pcap")
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", path, "-s", "0", "udp", "port", str(PORT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    cpu0 = cpu_seconds(dump.pid)
    sent, seconds = flood()
    time.sleep(0.5)
    cpu = cpu_seconds(dump.pid) - cpu0
    dump.send_signal(signal.SIGINT)
    _, err = dump.communicate(timeout=30)
    captured = int(re.search(r"(\d+) packets captured", err).group(1))
    dropped = int(re.search(r"(\d+) packets dropped by kernel", err).group(1))
    os.unlink(path)
    return {"pps": sent / seconds, "captured": captured / sent, "cpu_per_m": cpu / sent * 1e6, "dropped": dropped,
            "cpu": cpu, "sent": sent}


def main():
    os.makedirs(os.path.dirname(FLOOD), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", FLOOD, os.path.join(ROOT, "bench", "udpflood.c")], check=True)
    results = {"none": [], "fathom": [], "fathom-rec": [], "tcpdump": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as workdir:
        for _ in range(RUNS):  # interleaved, so drift in the machine's speed hits every contender alike
            results["none"].append(no_capture())
            results["fathom"].append(with_fathom(workdir))
            shutil.rmtree(os.path.join(workdir, "fathom"), ignore_errors=True)
            results["fathom-rec"].append(with_fathom(workdir, "--no-dissection"))
            shutil.rmtree(os.path.join(workdir, "fathom"), ignore_errors=True)
            results["tcpdump"].append(with_tcpdump(workdir))
    base = median(r["pps"] for r in results["none"])
    rows = {}
    for name, runs in results.items():
        pps = median(r["pps"] for r in runs)
        captured = None if runs[0]["captured"] is None else min(r["captured"] for r in runs)
        cpu = None if runs[0]["cpu_per_m"] is None else median(r["cpu_per_m"] for r in runs)
        rows[name] = (pps, captured, cpu)
    print(f"capture benchmark: 64-byte UDP over loopback, sendmmsg, {SECONDS:.0f} s x {RUNS} runs (medians)")
    print(f"{'capture':<10}{'sender pps':>12}{'vs none':>9}{'vs tcpdump':>12}{'captured':>10}{'CPU s/M pkts':>14}")
    for name, (pps, captured, cpu) in rows.items():
        cap = "-" if captured is None else f"{captured * 100:.2f}%"
        cpu_text = "-" if cpu is None else f"{cpu:.3f}"
        print(f"{name:<10}{pps:>12,.0f}{pps / base:>8.2f}x{pps / rows['tcpdump'][0]:>11.2f}x{cap:>10}{cpu_text:>14}")
    print(f"fathom ring losses: {sum(r['lost'] for r in results['fathom'] + results['fathom-rec']):.0f}; "
          f"tcpdump kernel drops: {sum(r['dropped'] for r in results['tcpdump'])}")
    print(f"fathom CPU per packet vs tcpdump: {rows['fathom'][2] / rows['tcpdump'][2]:.2f}x with live dissection, "
          f"{rows['fathom-rec'][2] / rows['tcpdump'][2]:.2f}x recording only (--no-dissection) "
          "(fathom records each datagram twice, at both sockets, with cgroup id and socket cookie)")


if __name__ == "__main__":
    sys.exit(main())
