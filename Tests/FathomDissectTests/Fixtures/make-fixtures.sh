#!/usr/bin/env bash
# Records the dissector fixtures: real clients and servers on loopback, captured by tcpdump, then damaged variants
# made with scapy. Needs root (tcpdump), and: tcpdump curl python3 (grpcio scapy) nghttp2-client nghttp2-server
# dnsutils dnsmasq-base openssl. Run from anywhere; writes the .pcap files next to this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts tcpdump on lo for a filter; the capture stops in stop_capture.
start_capture() {
    tcpdump -i lo -s 0 -U --immediate-mode -w "$here/$1" "$2" 2>"$work/tcpdump-$1.log" &
    capture_pid=$!
    for _ in $(seq 50); do grep -q "listening" "$work/tcpdump-$1.log" && break; sleep 0.1; done
}
stop_capture() {
    sleep 1
    kill -INT "$capture_pid"
    wait "$capture_pid" 2>/dev/null || true
}
wait_port() {
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2
    return 1
}

# HTTP/1.1: keep-alive (several URLs on one connection), chunked, gzip, HEAD, 204, 304, 404, POST, GraphQL.
python3 "$here/http_server.py" 18080 & pids+=($!)
wait_port 18080
start_capture http1.pcap "tcp port 18080"
curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "http://127.0.0.1:18080/hello?name=ada&x=1" http://127.0.0.1:18080/chunked \
    http://127.0.0.1:18080/big --compressed http://127.0.0.1:18080/gzip http://127.0.0.1:18080/missing
curl -s -o /dev/null -I http://127.0.0.1:18080/hello
curl -s -o /dev/null http://127.0.0.1:18080/empty http://127.0.0.1:18080/cached
curl -s -o /dev/null -d 'name=fathom&kind=test' http://127.0.0.1:18080/items
curl -s -o /dev/null -H 'Content-Type: application/json' \
    -d '{"operationName":"GetUser","query":"query GetUser { user(id: 1) { name } }"}' \
    http://127.0.0.1:18080/graphql
stop_capture

# HTTP/2 with prior knowledge against nghttpd (it does not implement the h2c upgrade; unit tests cover that).
mkdir -p "$work/www"
echo "hello over h2" >"$work/www/index.html"
head -c 40000 /dev/zero | tr '\0' 'a' >"$work/www/large.txt"
nghttpd --no-tls -d "$work/www" 18081 & pids+=($!)
wait_port 18081
start_capture http2.pcap "tcp port 18081"
nghttp -n http://127.0.0.1:18081/index.html http://127.0.0.1:18081/large.txt http://127.0.0.1:18081/nope
stop_capture

# gRPC: unary OK, unary NOT_FOUND with a message, server streaming.
python3 "$here/grpc_app.py" serve 18082 & pids+=($!)
wait_port 18082
start_capture grpc.pcap "tcp port 18082"
python3 "$here/grpc_app.py" client 18082 >/dev/null
stop_capture

# DNS over UDP and TCP against dnsmasq answering from its own records.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=18053 --listen-address=127.0.0.1 --bind-interfaces \
    --local=/fathom.test/ --address=/web.fathom.test/10.1.2.3 --address=/web.fathom.test/fd00::1:2:3 \
    --cname=alias.fathom.test,web.fathom.test --mx-host=fathom.test,mail.fathom.test,10 \
    --txt-record=fathom.test,"v=fathom1" --srv-host=_api._tcp.fathom.test,web.fathom.test,8443,1,5 \
    --pid-file="$work/dnsmasq.pid" & pids+=($!)
sleep 1
start_capture dns.pcap "port 18053"
for query in "web.fathom.test A" "web.fathom.test AAAA" "alias.fathom.test A" "fathom.test MX" \
    "fathom.test TXT" "_api._tcp.fathom.test SRV" "missing.fathom.test A"; do
    # shellcheck disable=SC2086
    dig +tries=1 +time=2 @127.0.0.1 -p 18053 $query >/dev/null
done
dig +tcp +tries=1 +time=2 @127.0.0.1 -p 18053 web.fathom.test A >/dev/null
stop_capture

# TLS handshakes: curl (TLS 1.3, SNI, ALPN) and openssl s_client (TLS 1.2) against openssl s_server.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj "/CN=fathom.test" 2>/dev/null
openssl s_server -accept 18443 -cert "$work/cert.pem" -key "$work/key.pem" -www -quiet & pids+=($!)
wait_port 18443
start_capture tls.pcap "tcp port 18443"
curl -s -k -o /dev/null --resolve fathom.test:18443:127.0.0.1 https://fathom.test:18443/
echo | openssl s_client -connect 127.0.0.1:18443 -servername other.fathom.test -alpn http/1.1 -tls1_2 \
    >/dev/null 2>&1 || true
stop_capture

# Damaged variants of the HTTP/1 capture.
python3 "$here/variants.py" "$here/http1.pcap" "$here"
ls -l "$here"/*.pcap
