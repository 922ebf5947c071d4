"""Issue 2: the agent records every packet of the node, through eBPF or libpcap, into a recording that survives
crashes, full disks and its own retention."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import FATHOM, TRAFFIC, require, exchange, free_port, fathom_packets, in_netns, run, segments, tshark_packets


def marker():
    return "fathom-" + uuid.uuid4().hex[:10]


def exact(packets, payload):
    payload = payload.encode()
    return [p for p in packets if p["payload"] == payload]


def capture_programs_attached():
    """Ids of the capture programs loaded on this machine (another agent's included: compare before and after)."""
    progs = run("bpftool", "prog", "show").stdout
    return {line.split(":")[0] for line in progs.splitlines() if "name capture_" in line}


def test_ebpf_records_every_packet_once_per_local_socket(hosts, cgroups, agents, tmp_path):
    before = capture_programs_attached()
    agent = agents(tmp_path / "data", "--capture", "ebpf")
    assert len(capture_programs_attached() - before) == 2, "cgroup ingress and egress attached"
    assert agent.wait_ready()["agent"]["captureSource"] == "ebpf"
    client_cgroup, client_cgroup_id = cgroups.make("client")
    server_cgroup, server_cgroup_id = cgroups.make("server")
    udp_count, tcp_count = 20, 5
    plan = [  # (kind, server address, server netns, client netns)
        ("udp", hosts.b4, hosts.b, hosts.a),
        ("udp", hosts.b6, hosts.b, hosts.a),
        ("tcp", hosts.b4, hosts.b, hosts.a),
        ("tcp", hosts.b6, hosts.b, hosts.a),
        ("udp", "127.0.0.1", None, None),
        ("tcp", "::1", None, None),
    ]
    markers = []
    for kind, address, server_ns, client_ns in plan:
        m = marker()
        markers.append((kind, m))
        exchange(kind, address, m, udp_count if kind == "udp" else tcp_count, server_netns=server_ns,
                 client_netns=client_ns, server_cgroup=server_cgroup, client_cgroup=client_cgroup)
    time.sleep(0.5)  # the drainer's timer picks up the last records
    assert agent.metric_sum("fathom_ring_lost_records_total") == 0
    assert agent.stop() == 0, agent.output()
    assert capture_programs_attached() - before == set(), "programs left attached after SIGTERM"

    files = segments(agent.data_dir)
    assert files, "no segment written"
    by_tshark = tshark_packets(files)
    by_fathom = fathom_packets(files)
    for kind, m in markers:
        messages = ([f"{m}-dgram-{i}" for i in range(udp_count)] if kind == "udp"
                    else [f"{m}-req-{i}\n" for i in range(tcp_count)] + [f"reply-{m}-req-{i}\n" for i in range(tcp_count)])
        for message in messages:
            # Seen once at the sending socket (egress) and once at the receiving socket (ingress).
            seen = exact(by_tshark, message)
            assert len(seen) == 2, (kind, message, seen)
            assert seen[0]["direction"] != seen[1]["direction"]
            ours = exact(by_fathom, message)
            assert sorted(p["direction"] for p in ours) == ["inbound", "outbound"], (message, ours)
            assert all(p["source"] == "ebpf" for p in ours)
            out, inb = sorted(ours, key=lambda p: p["direction"] != "outbound")
            assert out["socket_cookie"] != 0 and inb["socket_cookie"] != 0
            assert out["socket_cookie"] != inb["socket_cookie"]
            sender_cgroup = client_cgroup_id if not message.startswith("reply-") else server_cgroup_id
            receiver_cgroup = server_cgroup_id if not message.startswith("reply-") else client_cgroup_id
            assert (out["cgroup_id"], inb["cgroup_id"]) == (sender_cgroup, receiver_cgroup), message


def test_packets_handled_on_different_cpus_are_recorded_in_time_order(root, agents, tmp_path):
    """A request handled on one CPU and its answer on another land in different rings; the recording must still
    hold every request before its answer, or the dissector pairs answers with nothing."""
    require(len(os.sched_getaffinity(0)) >= 2, "needs two CPUs")
    agent = agents(tmp_path / "data", "--capture", "ebpf")
    m, count, port = marker(), 300, free_port()
    # Loopback delivers a datagram on its sender's CPU: pings are recorded on CPU 1, pongs on CPU 0, so a drainer that
    # empties ring 0 before ring 1 would put pongs first.
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, TRAFFIC, "udp-echo-server", "127.0.0.1", str(port),
                               str(count)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        run("taskset", "-c", "1", sys.executable, TRAFFIC, "udp-ping-client", "127.0.0.1", str(port), m, str(count),
            timeout=60)
        assert server.wait(timeout=30) == 0, server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
    time.sleep(0.5)
    assert agent.stop() == 0, agent.output()
    marked = [p for p in fathom_packets(segments(agent.data_dir)) if p["payload"].startswith(m.encode())]
    order = [p["payload"].decode() for p in marked]
    assert len(order) == 4 * count, "each datagram at the sending and the receiving socket"
    position = {}
    for index, payload in enumerate(order):
        position.setdefault(payload, index)
    late = [i for i in range(count) if position[f"{m}-pong-{i}"] < position[f"{m}-ping-{i}"]]
    assert not late, f"{len(late)} of {count} answers recorded before their request (first: {late[:5]})"
    stamps = [p["timestamp_ns"] for p in marked]
    assert stamps == sorted(stamps)


def test_auto_falls_back_to_libpcap_and_says_why(root, tmp_path):
    # Without CAP_BPF and CAP_SYS_ADMIN the kernel refuses the programs; CAP_NET_RAW still allows libpcap.
    port = free_port()
    cmd = ["setpriv", "--inh-caps=-bpf,-sys_admin,-perfmon", "--bounding-set=-bpf,-sys_admin,-perfmon", FATHOM,
           "agent", "--data-dir", str(tmp_path / "data"), "--capture", "auto", "--listen", f"127.0.0.1:{port}"]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = None
        for _ in range(100):
            result = run("curl", "-sf", f"http://127.0.0.1:{port}/healthz", check=False)
            if result.returncode == 0:
                health = json.loads(result.stdout)
                break
            assert agent.poll() is None, agent.stdout.read()
            time.sleep(0.1)
        assert health and health["agent"]["captureSource"] == "af_packet"
        assert "Operation not permitted" in health["agent"]["fallbackReason"], health
    finally:
        agent.send_signal(signal.SIGTERM)
        output = agent.communicate(timeout=30)[0]
    assert agent.returncode == 0, output
    warnings = [line for line in output.splitlines() if "falling back to libpcap" in line]
    assert len(warnings) == 1 and "Operation not permitted" in warnings[0], output


def test_token_guards_everything_but_health(root, agents, tmp_path):
    agent = agents(tmp_path / "data", "--capture", "pcap", "--token", "s3cret")
    base = f"http://127.0.0.1:{agent.port}"
    code = lambda *args: run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args).stdout
    assert code(f"{base}/healthz") == "200"
    assert code(f"{base}/metrics") == "401"
    assert code("-H", "Authorization: Bearer wrong", f"{base}/mcp/calls") == "401"
    assert code("-H", "Authorization: Bearer s3cret", f"{base}/metrics") == "200"
    body = run("curl", "-s", "-H", "Authorization: Bearer wrong", f"{base}/metrics").stdout
    assert "s3cret" not in body
    refused = run(FATHOM, "agent", "--data-dir", str(tmp_path / "d2"), "--listen", "0.0.0.0:0", check=False)
    assert refused.returncode != 0 and "bearer token" in refused.stderr


def test_pause_stops_recording_without_detaching(root, agents, tmp_path):
    before = capture_programs_attached()
    agent = agents(tmp_path / "data", "--capture", "ebpf")
    run("curl", "-sf", "-X", "POST", f"http://127.0.0.1:{agent.port}/capture/pause")
    attached = capture_programs_attached() - before
    assert len(attached) == 2, attached  # cgroup ingress and egress stay attached while paused
    paused, resumed = marker(), marker()
    exchange("udp", "127.0.0.1", paused, 5)
    run("curl", "-sf", "-X", "POST", f"http://127.0.0.1:{agent.port}/capture/resume")
    exchange("udp", "127.0.0.1", resumed, 5)
    time.sleep(0.5)
    assert agent.stop() == 0
    packets = fathom_packets(segments(agent.data_dir))
    assert not [p for p in packets if paused.encode() in p["payload"]]
    assert len([p for p in packets if resumed.encode() in p["payload"]]) == 10


def test_cgroup_targeting_in_the_kernel(root, cgroups, agents, tmp_path):
    wanted, _ = cgroups.make("wanted")
    other, _ = cgroups.make("other")
    # A child cgroup is covered through its ancestor's entry.
    child = os.path.join(wanted, "child")
    os.mkdir(child)
    cgroups.paths.insert(0, child)
    agent = agents(tmp_path / "included", "--capture", "ebpf", "--include-cgroup", wanted)
    inside, outside = marker(), marker()
    exchange("udp", "127.0.0.1", inside, 5, client_cgroup=child, server_cgroup=other)
    exchange("udp", "127.0.0.1", outside, 5, client_cgroup=other, server_cgroup=other)
    time.sleep(0.5)
    assert agent.stop() == 0
    packets = fathom_packets(segments(agent.data_dir))
    seen = [p for p in packets if inside.encode() in p["payload"]]
    assert len(seen) == 5 and all(p["direction"] == "outbound" for p in seen)  # the client's side only
    assert not [p for p in packets if outside.encode() in p["payload"]]
    assert all(p["cgroup_id"] == os.stat(child).st_ino for p in packets), "only the included subtree is recorded"

    agent = agents(tmp_path / "excluded", "--capture", "ebpf", "--exclude-cgroup", wanted)
    again = marker()
    exchange("udp", "127.0.0.1", again, 5, client_cgroup=child, server_cgroup=other)
    time.sleep(0.5)
    assert agent.stop() == 0
    seen = [p for p in fathom_packets(segments(agent.data_dir)) if again.encode() in p["payload"]]
    assert len(seen) == 5 and all(p["direction"] == "inbound" for p in seen)  # the server's side only


def test_pcap_fallback_records_every_packet(hosts, agents, tmp_path):
    # libpcap sees the interfaces of its own network namespace: run the agent in host a.
    agent = agents(tmp_path / "data", "--capture", "pcap", netns=hosts.a)
    assert agent.wait_ready()["agent"]["captureSource"] == "af_packet"
    plan = [("udp", hosts.b4), ("udp", hosts.b6), ("tcp", hosts.b4), ("tcp", hosts.b6)]
    markers = []
    for kind, address in plan:
        m = marker()
        markers.append((kind, m))
        exchange(kind, address, m, 10 if kind == "udp" else 3, server_netns=hosts.b, client_netns=hosts.a)
    loopback = marker()
    exchange("udp", "127.0.0.1", loopback, 10, server_netns=hosts.a, client_netns=hosts.a)
    time.sleep(0.5)
    assert agent.stop() == 0, agent.output()
    files = segments(agent.data_dir)
    by_tshark = tshark_packets(files)
    by_fathom = fathom_packets(files)
    for kind, m in markers:
        messages = ([f"{m}-dgram-{i}" for i in range(10)] if kind == "udp"
                    else [f"{m}-req-{i}\n" for i in range(3)] + [f"reply-{m}-req-{i}\n" for i in range(3)])
        for message in messages:
            # One interface between the two hosts: each packet crosses it once.
            assert len(exact(by_tshark, message)) == 1, message
            ours = exact(by_fathom, message)
            assert len(ours) == 1 and ours[0]["source"] == "af_packet" and ours[0]["cgroup_id"] == 0
    for i in range(10):
        assert exact(by_fathom, f"{loopback}-dgram-{i}"), "loopback datagram missing"


def flood(seconds, max_packets, port=9, netns=None):
    """A bounded UDP flood over loopback (to the discard port: no receiver needed)."""
    return subprocess.Popen(in_netns(netns, [sys.executable, TRAFFIC, "udp-flood", "127.0.0.1", str(port), str(seconds),
                                             str(max_packets)]), stdout=subprocess.PIPE, text=True)


def test_kill9_then_restart_keeps_every_complete_block(root, agents, tmp_path):
    data = tmp_path / "data"
    agent = agents(data, "--capture", "ebpf", "--segment-bytes", "262144")
    sender = flood(4, 400_000)
    time.sleep(1.5)
    agent.stop(signal.SIGKILL)
    sender.wait(timeout=30)
    before = segments(str(data))
    assert before, "nothing recorded before the kill"

    again = agents(data, "--capture", "ebpf", "--segment-bytes", "262144")
    assert again.stop() == 0, again.output()
    for f in segments(str(data)):
        result = run("tshark", "-r", f, "-T", "fields", "-e", "frame.number", check=False)
        assert result.returncode == 0 and "cut short" not in result.stderr, (f, result.stderr)
    packets = fathom_packets(segments(str(data)))
    assert len(packets) > 1000


def total_bytes(files):
    """Sizes of the files that still exist: retention may delete one between the listing and the stat."""
    total = 0
    for f in files:
        try:
            total += os.path.getsize(f)
        except FileNotFoundError:
            pass
    return total


def test_retention_deletes_oldest_first_within_budget(root, agents, tmp_path):
    segment, budget = 65536, 524288
    agent = agents(tmp_path / "data", "--capture", "ebpf", "--segment-bytes", str(segment),
                   "--retention-bytes", str(budget))
    sender = flood(3, 300_000)
    peak = 0
    while sender.poll() is None:
        peak = max(peak, total_bytes(segments(agent.data_dir)))
        time.sleep(0.05)
    time.sleep(0.5)
    created = agent.metric_sum("fathom_recording_segments_created_total")
    deleted = agent.metric_sum("fathom_recording_segments_deleted_total")
    assert agent.stop() == 0, agent.output()
    files = segments(agent.data_dir)
    peak = max(peak, total_bytes(files))
    assert peak <= budget + segment + 70_000, peak  # one segment over, plus the block that crossed the line
    assert deleted > 0
    # Segment names end in their sequence number: what is left is the newest run of segments, none skipped. (The
    # machine's other traffic may add a segment between reading the metrics and the agent's last flush.)
    sequences = sorted(int(os.path.basename(f).rsplit("-", 1)[1].split(".")[0]) for f in files)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), sequences
    assert sequences[-1] >= created - 1 and sequences[0] >= deleted, (sequences, created, deleted)


def test_read_only_data_dir_is_a_clear_error(root, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount))
    try:
        result = run(FATHOM, "agent", "--data-dir", str(mount / "data"), "--capture", "pcap", "--listen",
                     "127.0.0.1:0", check=False, timeout=30)
        assert result.returncode != 0
        message = result.stdout + result.stderr
        assert "read-only" in message.lower() or "not writable" in message.lower(), message
        assert str(mount) in message
    finally:
        run("umount", str(mount), check=False)


def test_full_disk_counts_drops_and_resumes(root, agents, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    # Room for the calls database the agent creates at start (32 KiB pages: ~1.5 MB with its WAL while the schema is
    # written), and little more: the flood fills the rest.
    run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount))
    try:
        agent = agents(mount / "data", "--capture", "ebpf", "--segment-bytes", "262144",
                       "--retention-bytes", str(64 << 20))
        flood(2, 100_000).wait(timeout=30)
        time.sleep(0.5)
        assert agent.metric_sum("fathom_recording_dropped_packets_total") > 0
        assert agent.metric_sum("fathom_recording_write_errors_total") > 0
        assert agent.wait_ready()  # still up and answering
        written = agent.metric_sum("fathom_recording_written_packets_total")
        run("mount", "-o", "remount,size=64m", str(mount))
        # The store retries about once a second and drops what arrives before: traffic must go on past a retry (one
        # short flood could end before it, and then nothing is left to write).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            flood(0.3, 5_000).wait(timeout=30)
            time.sleep(0.3)
            if agent.metric_sum("fathom_recording_written_packets_total") > written:
                break
        assert agent.metric_sum("fathom_recording_written_packets_total") > written, (
            {k: v for k, v in agent.metrics().items() if k.startswith("fathom_recording")}, agent.output()[-3000:])
        assert agent.stop() == 0, agent.output()
    finally:
        run("umount", "-l", str(mount), check=False)
