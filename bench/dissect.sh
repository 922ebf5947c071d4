#!/usr/bin/env bash
# `make bench`, dissection: `fathom dissect` against `tshark -T fields` pulling the same fields (method, URI, status,
# gRPC status, DNS name, rcode and answers) out of the same capture of real traffic (bench/make-mixed-capture.sh:
# nginx+wrk, nghttpd+h2load, grpcio, dnsmasq), on one core, by CPU time (the machine may be shared), with peak memory
# and the number of calls each found. Usage: dissect.sh FATHOM [FILE [SECONDS]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fathom=${1:?usage: dissect.sh FATHOM [FILE [SECONDS]]}
file=${2:-/var/tmp/fathom-bench-mixed.pcap}
[[ -s $file ]] || "$root/bench/make-mixed-capture.sh" "$file" "${3:-40}"
bytes=$(stat -c %s "$file")
measure() { # label, the counting awk program, then the command; prints cpu s, calls, calls/s, MB/s, peak RSS
	local label=$1 count=$2 timing calls
	shift 2
	timing=$(mktemp)
	calls=$( { /usr/bin/time -f "%U %S %M" -o "$timing" taskset -c 0 "$@" 2>/dev/null; } | awk -F'|' "$count")
	awk -v l="$label" -v c="$calls" -v b="$bytes" '{ t = $1 + $2; printf "%-8s %7.2f s CPU %8d calls %9.0f calls/s %7.1f MB/s %6.0f MB RSS\n", l, t, c, c / t, b / 1e6 / t, $3 / 1024 }' "$timing" >&2
	awk '{ print $1 + $2 }' "$timing"
}
echo "dissection benchmark: $(numfmt --to=iec "$bytes") capture of HTTP/1.1, HTTP/2, gRPC and DNS ($file), one core"
f=$(measure fathom '{ n++ } END { print n }' "$fathom" dissect "$file")
# A call is an HTTP/1 response, an HTTP/2 response HEADERS frame (gRPC's included; trailers carry no :status) or a DNS
# response; several may share a packet. Trailers (grpc-status) are printed too, and counted by neither.
t=$(measure tshark '{ if ($1 != "") n += split($1, a, ","); if ($2 != "") n += split($2, b, ","); if ($3 != "") n++ } END { print n }' \
	tshark -r "$file" -n -d tcp.port==8080,http -d tcp.port==8081,http2 -d tcp.port==50051,http2 -d udp.port==5300,dns \
	-Y "http.response || http2.headers.status || http2.header.name == \"grpc-status\" || dns.flags.response == 1" -T fields -E occurrence=a -E aggregator=, \
	-E separator='|' -e http.response.code -e http2.headers.status -e dns.flags.rcode -e http.response_for.uri \
	-e http2.request.full_uri -e http2.header.value -e dns.qry.name -e dns.a)
awk -v f="$f" -v t="$t" 'BEGIN { printf "fathom is %.1fx tshark by CPU time\n", t / f }'
