#!/usr/bin/env bash
# Makes the dissection benchmark's capture from real servers and load generators, captured by tcpdump, inside a network
# namespace of its own (its loopback carries nothing else): HTTP/1.1 (nginx, wrk), HTTP/2 cleartext (nghttpd, h2load),
# gRPC (grpcio) and DNS (dnsmasq). Ports: 8080 http, 8081 h2c, 50051 grpc, 5300 dns.
# Usage: make-mixed-capture.sh OUT.pcap [SECONDS]. Every generator stops after SECONDS (default 40) or its count.
set -euo pipefail
out=${1:?usage: make-mixed-capture.sh OUT.pcap [SECONDS]}
seconds=${2:-40}
here=$(cd "$(dirname "$0")" && pwd)
ns=fathom-bench-mix
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as www-data
cleanup() {
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	sleep 0.5
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

mkdir -p "$work/www" "$work/nginx"
head -c 3000 /dev/urandom | base64 -w 100 >"$work/www/item.txt"   # ~4 KB bodies
printf '{"status":"ok"}\n' >"$work/www/health.json"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    server {
        listen 127.0.0.1:8080;
        root $work/www;
        location /missing { return 404; }
    }
}
CONF
printf 'port=5300\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\naddress=/bench.test/10.9.8.7\ncache-size=0\n' \
	>"$work/dnsmasq.conf"

# A large kernel buffer: a capture with drops would bench gaps, not dissection.
in_ns tcpdump -i lo -s 0 -B 262144 -w "$out" 'tcp or udp' 2>"$work/tcpdump.log" &
tcpdump=$!
in_ns nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"
in_ns nghttpd --no-tls -d "$work/www" 8081 &
in_ns dnsmasq --conf-file="$work/dnsmasq.conf" --keep-in-foreground --pid-file="$work/dnsmasq.pid" &
in_ns python3 "$here/mixed_load.py" grpc-server 50051 "$((seconds + 30))" >"$work/grpc.log" &
sleep 2

in_ns wrk -t1 -c4 -d "${seconds}s" http://127.0.0.1:8080/item.txt >"$work/wrk.log" &
in_ns wrk -t1 -c2 -d "${seconds}s" http://127.0.0.1:8080/missing/x >>"$work/wrk.log" &
in_ns h2load -c 2 -m 4 --rps 2000 -D "$seconds" http://127.0.0.1:8081/item.txt >"$work/h2load.log" 2>&1 &
in_ns python3 "$here/mixed_load.py" grpc-client 50051 200000 "$seconds" &
in_ns python3 "$here/mixed_load.py" dns-client 5300 30000 "$seconds" &
wait %5 %6 %7 %8 %9
sleep 1
kill -TERM "$tcpdump"  # SIGINT is ignored by background jobs of a script
wait "$tcpdump" || true
grep -E "dropped" "$work/tcpdump.log" >&2 || true
echo "$out: $(du -h "$out" | cut -f1)" >&2
