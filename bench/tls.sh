#!/usr/bin/env bash
# `make bench`, TLS: nginx serving HTTPS on loopback (one worker on CPU 0) under wrk (one thread on CPU 1, fixed
# concurrency, keep-alive), with (a) no probes, (b) empty probes on fathom's hook points (bpftrace, at the places
# `fathom tls-status --probes` gives), (b0) empty probes where tools usually hook (SSL_read entry and return, SSL_write
# entry: each hit single-steps the function's first instruction), both skipped when bpftrace is missing, (c2) the
# fathom agent with live dissection off and (c) the agent as it runs by default. Prints requests/s, p50/p99 latency,
# nginx and agent CPU per request, and for (c) the TLS programs' hits and BPF time per request
# (kernel.bpf_stats_enabled). Usage: tls.sh FATHOM [SECONDS] [CONNECTIONS]
set -euo pipefail
fathom=$(realpath "${1:?usage: tls.sh FATHOM [SECONDS] [CONNECTIONS]}")
seconds=${2:-10}
connections=${3:-16}
for tool in nginx wrk openssl; do command -v "$tool" >/dev/null || { echo "tls.sh needs $tool" >&2; exit 1; }; done
work=$(mktemp -d /tmp/fathom-bench-tls.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
libssl=$(ldd "$(command -v nginx)" | awk '/libssl/ { print $3 }')
agent_pid="" probes_pid=""
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
	[[ -n $probes_pid ]] && kill "$probes_pid" 2>/dev/null && wait "$probes_pid" 2>/dev/null
	[[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	[[ -s $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
	echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
	sleep 0.5
	rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 -subj /CN=localhost 2>/dev/null
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 01;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 100000000;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $work/cert.pem;
		ssl_certificate_key $work/key.pem;
		location / { return 200 "hello from nginx\n"; }
	}
}
EOF
nginx -c "$work/nginx.conf" -p "$work" -e "$work/error.log"
sleep 0.5
master=$(cat "$work/nginx.pid")
nginx_pids() { echo "$master" $(pgrep -P "$master"); }

cpu_ticks() { cat $(printf '/proc/%s/stat ' "$@") | awk '{ t += $14 + $15 } END { print t }'; }
# One wrk run; prints "requests/s p50 p99 nginx-CPU-µs/request agent-CPU-µs/request requests".
measure() {
	local before_nginx before_agent=0 out requests
	before_nginx=$(cpu_ticks $(nginx_pids))
	[[ -n $agent_pid ]] && before_agent=$(cpu_ticks "$agent_pid")
	out=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "https://127.0.0.1:$port/")
	requests=$(awk '/requests in/ { print $1 }' <<<"$out")
	local nginx_ticks=$(($(cpu_ticks $(nginx_pids)) - before_nginx)) agent_ticks=0
	[[ -n $agent_pid ]] && agent_ticks=$(($(cpu_ticks "$agent_pid") - before_agent))
	awk -v out="$out" -v r="$requests" -v n="$nginx_ticks" -v a="$agent_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		split(out, lines, "\n")
		for (i in lines) {
			if (lines[i] ~ /Requests\/sec/) { split(lines[i], f, " "); rps = f[2] }
			if (lines[i] ~ /^ +50%/) { split(lines[i], f, " "); p50 = f[2] }
			if (lines[i] ~ /^ +99%/) { split(lines[i], f, " "); p99 = f[2] }
		}
		printf "%s %s %s %.1f %.1f %d\n", rps, p50, p99, n / hz * 1e6 / r, a / hz * 1e6 / r, r
	}'
}
report() { # label, measure output
	read -r rps p50 p99 nginx_us agent_us requests <<<"$2"
	printf "%-22s %10.0f req/s  p50 %-8s p99 %-8s nginx %6.1f µs CPU/req  agent %6.1f µs CPU/req\n" \
		"$1" "$rps" "$p50" "$p99" "$nginx_us" "$agent_us"
}

echo "TLS benchmark: nginx $(nginx -v 2>&1 | sed 's/.*\///') HTTPS on 127.0.0.1:$port ($libssl), wrk -t1 -c$connections -d${seconds}s, keep-alive"
taskset -c 1 wrk -t1 -c"$connections" -d2s "https://127.0.0.1:$port/" >/dev/null # warm-up
a=$(measure)
report "(a) no probes" "$a"

b="" b0=""
attach_empty() { # a bpftrace script of empty probes (--unsafe: it cannot check instruction boundaries in a stripped libssl)
	bpftrace --unsafe -e "$1" >/dev/null 2>&1 &
	probes_pid=$!
	sleep 5
}
detach_empty() {
	kill "$probes_pid"
	wait "$probes_pid" 2>/dev/null || true
	probes_pid=""
}
if command -v bpftrace >/dev/null; then
	# fathom's places are file offsets, which are addresses too in a libssl whose code is loaded at its file offset.
	attach_empty "$("$fathom" tls-status --probes "$libssl" | awk -v lib="$libssl" 'NR > 1 {
		printf "%s:%s:%s {} ", ($4 == "return" ? "uretprobe" : "uprobe"), lib, $3 }')"
	b=$(measure)
	detach_empty
	report "(b) empty probes, fathom's places" "$b"
	attach_empty "uprobe:$libssl:SSL_read {} uretprobe:$libssl:SSL_read {} uprobe:$libssl:SSL_write {}"
	b0=$(measure)
	detach_empty
	report "(b0) empty probes at SSL_read/SSL_write" "$b0"
else
	echo "(b) empty probes: skipped (bpftrace is not installed)"
fi

hooked() {
	curl -s "http://127.0.0.1:$api/tls/targets" 2>/dev/null |
		python3 -c "import json, sys; sys.exit(not any(t['pid'] in ($(nginx_pids | tr ' ' ','),) and t['hooked'] for t in json.load(sys.stdin)['targets']))" 2>/dev/null
}
start_agent() { # extra agent options
	rm -rf "$work/data"
	"$fathom" agent --data-dir "$work/data" --listen "127.0.0.1:$api" "$@" >"$work/agent.log" 2>&1 &
	agent_pid=$!
	for _ in $(seq 100); do
		hooked && return
		sleep 0.2
	done
	echo "the agent did not hook nginx ($(nginx_pids)):"
	curl -s "http://127.0.0.1:$api/tls/targets"
	echo
	exit 1
}
stop_agent() {
	kill "$agent_pid"
	wait "$agent_pid" 2>/dev/null || true
	agent_pid=""
}

# (c2) first: capture and recording only, live dissection off. What live dissection and the calls database add is
# the difference to (c).
start_agent --no-dissection
c2=$(measure)
stop_agent
report "(c2) agent, no dissection" "$c2"

start_agent
echo 1 >/proc/sys/kernel/bpf_stats_enabled
# Each TLS program's runs and BPF time: before and after, as "name runs ns" lines.
stats() { bpftool prog show -j | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p.get("name", "").startswith("tls_"):
        print(p["name"], p.get("run_cnt", 0), p.get("run_time_ns", 0))'; }
stats >"$work/stats.before"
c=$(measure)
stats >"$work/stats.after"
report "(c) fathom agent" "$c"
requests=$(awk '{ print $6 }' <<<"$c")
awk -v r="$requests" 'FNR == NR { runs[$1] -= $2; ns[$1] -= $3; next } { runs[$1] += $2; ns[$1] += $3 }
	END {
		for (name in runs) { total_runs += runs[name]; total_ns += ns[name] }
		printf "agent BPF: %.2f TLS program runs per request (uprobes + nested-syscall tracepoints), %.0f ns BPF time per request\n", total_runs / r, total_ns / r
		for (name in runs) if (runs[name] > 0)
			printf "  %-28s %6.2f runs/request %7.0f ns/run %7.0f ns/request\n", name, runs[name] / r, ns[name] / runs[name], ns[name] / r
	}' "$work/stats.before" "$work/stats.after"
ra=$(awk '{ print $1 }' <<<"$a")
rc=$(awk '{ print $1 }' <<<"$c")
awk -v a="$ra" -v c="$rc" 'BEGIN { printf "cost per request above (a): %.1f µs (%.0f%% fewer req/s)\n", (1e6 / c - 1e6 / a), (1 - c / a) * 100 }'
for baseline in b b0; do
	[[ -n ${!baseline} ]] || continue
	rb=$(awk '{ print $1 }' <<<"${!baseline}")
	awk -v b="$rb" -v c="$rc" -v name="$baseline" 'BEGIN {
		printf "cost per request above (%s): %.1f µs (agent at %.0f%% of (%s)'"'"'s req/s)\n", name, (1e6 / c - 1e6 / b), c / b * 100, name }'
done
