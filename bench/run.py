"""`make bench`: the capture cost, measured side by side in one run.

A bounded 64-byte UDP flood over loopback from a sendmmsg sender to a bound receiver, with
(a) no capture, (b) `fathom agent` (eBPF, live dissection on: the default), (c) `fathom agent --no-dissection`
(capture and recording only), (d) `tcpdump -w` to a file on the same disk, (e) programs that do nothing attached
where fathom's capture attaches (the floor of any cgroup_skb capture).
Capture cost is paid in the kernel on the sender's CPU, so the sender's packets/s is the main figure; then the
fraction of packets captured and the capturing process's own CPU seconds per million packets. The sender's own CPU
per datagram and how often the receiver went to sleep say why a rate moved: the receiver's protocol work on loopback
runs on the sender's CPU, and each time the receiver has emptied its queue and sleeps, the sender pays for waking it.

Every contender runs in two placements, interleaved: "spread" (the scheduler places sender and receiver, as the issue
describes) and "one CPU" (sender and receiver pinned to CPU 0, the capturing process left to the other). Spread, the
sender's rate also depends on how quickly the receiver's CPU wakes: on a 2-vCPU VM a capture that leaves that CPU
idle makes the receiver sleep and be woken more often, each wake-up paid by the sender, so a thriftier capture can
slow the sender. On one CPU no wake-up crosses CPUs and the rate measures what each capture costs in the kernel.
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
EMPTY_HOOKS = os.path.join(ROOT, ".build", "bench", "empty_hooks.bpf.o")
CLANG = os.environ.get("CLANG", "/opt/swift/usr/bin/clang")
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
MAX_PACKETS = 20_000_000
PORT = 47999
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


# The command prefix that places sender and receiver.
PLACEMENTS = {"spread": [], "one CPU": ["taskset", "-c", "0"]}


def flood(pin):
    """Datagrams sent, seconds, and the sender's CPU µs and the receiver's sleeps per datagram (from rusage)."""
    receiver = subprocess.Popen(pin + [FLOOD, "recv", "127.0.0.1", str(PORT), str(SECONDS + 1)], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    sender = subprocess.Popen(pin + [FLOOD, "send", "127.0.0.1", str(PORT), str(SECONDS), str(MAX_PACKETS), "64"],
                              stdout=subprocess.PIPE, text=True)
    out = sender.stdout.read()
    _, status, sender_usage = os.wait4(sender.pid, 0)
    _, _, receiver_usage = os.wait4(receiver.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    sent, seconds = re.match(r"sent (\d+) seconds ([\d.]+)", out).groups()
    sent = int(sent)
    return sent, float(seconds), {"sender_us": (sender_usage.ru_utime + sender_usage.ru_stime) / sent * 1e6,
                                  "sleeps_per_k": receiver_usage.ru_nvcsw / sent * 1000}


def no_capture(pin):
    sent, seconds, costs = flood(pin)
    return {"pps": sent / seconds, "captured": None, "cpu_per_m": None, **costs}


def cgroup2_root():
    with open("/proc/self/mounts") as mounts:
        roots = [line.split()[1] for line in mounts if line.split()[2] == "cgroup2"]
    return next((r for r in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified") if r in roots), roots[0])


def with_empty_hooks(pin):
    pins = f"/sys/fs/bpf/fathom-bench-{os.getpid()}"
    root = cgroup2_root()
    subprocess.run(["bpftool", "prog", "loadall", EMPTY_HOOKS, pins], check=True)
    attached = []
    try:
        for hook in ("ingress", "egress"):
            subprocess.run(["bpftool", "cgroup", "attach", root, hook, "pinned", f"{pins}/empty_{hook}", "multi"],
                           check=True)
            attached.append(hook)
        sent, seconds, costs = flood(pin)
    finally:
        for hook in attached:
            subprocess.run(["bpftool", "cgroup", "detach", root, hook, "pinned", f"{pins}/empty_{hook}"])
        shutil.rmtree(pins, ignore_errors=True)
    return {"pps": sent / seconds, "captured": None, "cpu_per_m": None, **costs}


def with_fathom(workdir, pin, *options):
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
        sent, seconds, costs = flood(pin)
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
            "records": records, "lost": lost, "cpu": cpu, "sent": sent, **costs}


def with_tcpdump(workdir, pin):
    path = os.path.join(workdir, "tcpdump.pcap")
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", path, "-s", "0", "udp", "port", str(PORT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    cpu0 = cpu_seconds(dump.pid)
    sent, seconds, costs = flood(pin)
    time.sleep(0.5)
    cpu = cpu_seconds(dump.pid) - cpu0
    dump.send_signal(signal.SIGINT)
    _, err = dump.communicate(timeout=30)
    captured = int(re.search(r"(\d+) packets captured", err).group(1))
    dropped = int(re.search(r"(\d+) packets dropped by kernel", err).group(1))
    os.unlink(path)
    return {"pps": sent / seconds, "captured": captured / sent, "cpu_per_m": cpu / sent * 1e6, "dropped": dropped,
            "cpu": cpu, "sent": sent, **costs}


def run_all(workdir, pin):
    """One run of every contender with sender and receiver placed by `pin`."""
    results = {"none": no_capture(pin), "fathom": with_fathom(workdir, pin)}
    shutil.rmtree(os.path.join(workdir, "fathom"), ignore_errors=True)
    results["fathom-rec"] = with_fathom(workdir, pin, "--no-dissection")
    shutil.rmtree(os.path.join(workdir, "fathom"), ignore_errors=True)
    results["tcpdump"] = with_tcpdump(workdir, pin)
    results["hooks"] = with_empty_hooks(pin)
    return results


def report(name, results):
    base = median(r["pps"] for r in results["none"])
    rows = {}
    for contender, runs in results.items():
        pps = median(r["pps"] for r in runs)
        captured = None if runs[0]["captured"] is None else min(r["captured"] for r in runs)
        cpu = None if runs[0]["cpu_per_m"] is None else median(r["cpu_per_m"] for r in runs)
        rows[contender] = (pps, captured, cpu, median(r["sender_us"] for r in runs),
                           median(r["sleeps_per_k"] for r in runs))
    print(f"\n{name}: 64-byte UDP over loopback, sendmmsg, {SECONDS:.0f} s x {RUNS} runs (medians); "
          "hooks = empty programs at fathom's cgroup_skb hooks")
    print(f"{'capture':<11}{'sender pps':>11}{'vs none':>9}{'vs tcpdump':>12}{'captured':>10}{'CPU s/M pkts':>14}"
          f"{'sender CPU us/pkt':>19}{'receiver sleeps/1k':>20}")
    for contender, (pps, captured, cpu, sender_us, sleeps) in rows.items():
        cap = "-" if captured is None else f"{captured * 100:.2f}%"
        cpu_text = "-" if cpu is None else f"{cpu:.3f}"
        print(f"{contender:<11}{pps:>11,.0f}{pps / base:>8.2f}x{pps / rows['tcpdump'][0]:>11.2f}x{cap:>10}{cpu_text:>14}"
              f"{sender_us:>19.2f}{sleeps:>20.0f}")
    # Wall time per datagram at the sender: what each capture adds above its floor.
    per_datagram = {contender: 1e6 / row[0] for contender, row in rows.items()}
    above = {contender: per_datagram[contender] - per_datagram["none"] for contender in rows}
    print(f"sender time per datagram above no capture: hooks alone {above['hooks']:.2f} us, fathom {above['fathom']:.2f} us "
          f"({per_datagram['fathom'] - per_datagram['hooks']:.2f} above the hooks), recording only "
          f"{above['fathom-rec']:.2f} us, tcpdump {above['tcpdump']:.2f} us")
    print(f"fathom ring losses: {sum(r['lost'] for r in results['fathom'] + results['fathom-rec']):.0f}; "
          f"tcpdump kernel drops: {sum(r['dropped'] for r in results['tcpdump'])}")
    print(f"fathom CPU per packet vs tcpdump: {rows['fathom'][2] / rows['tcpdump'][2]:.2f}x with live dissection, "
          f"{rows['fathom-rec'][2] / rows['tcpdump'][2]:.2f}x recording only (--no-dissection) "
          "(fathom records each datagram twice, at both sockets, with cgroup id and socket cookie)")


def main():
    os.makedirs(os.path.dirname(FLOOD), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", FLOOD, os.path.join(ROOT, "bench", "udpflood.c")], check=True)
    subprocess.run([CLANG, "-target", "bpf", "-D__TARGET_ARCH_x86", "-O2", "-g", "-Wall", "-Werror",
                    "-I", os.path.join(ROOT, "bpf"), "-c", os.path.join(ROOT, "bench", "empty_hooks.bpf.c"),
                    "-o", EMPTY_HOOKS], check=True)
    results = {name: {} for name in PLACEMENTS}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as workdir:
        for _ in range(RUNS):  # interleaved, so drift in the machine's speed hits every contender alike
            for placement, pin in PLACEMENTS.items():
                for contender, result in run_all(workdir, pin).items():
                    results[placement].setdefault(contender, []).append(result)
    print("capture benchmark")
    for name, placed in results.items():
        report(name, placed)


if __name__ == "__main__":
    sys.exit(main())
