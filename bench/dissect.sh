#!/usr/bin/env bash
# `make bench`, dissection: `fathom dissect` against `tshark -T fields` extracting the same HTTP fields from the same
# generated capture, timed by CPU time (the machine may be shared) with peak memory. Usage: dissect.sh FATHOM [FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fathom=${1:?usage: dissect.sh FATHOM [FILE]}
file=${2:-/var/tmp/fathom-bench-http.pcap}
[[ -s $file ]] || python3 "$root/Tests/FathomDissectTests/Fixtures/make-bench-capture.py" "$file" 100 1500 >/dev/null
bytes=$(stat -c %s "$file")
measure() { # label, then the command; prints cpu seconds, calls, calls/s, MB/s, peak RSS
	local label=$1 timing calls
	shift
	timing=$(mktemp)
	calls=$( { /usr/bin/time -f "%U %S %M" -o "$timing" taskset -c 0 "$@" 2>/dev/null; } | wc -l)
	awk -v l="$label" -v c="$calls" -v b="$bytes" '{ t = $1 + $2; printf "%-8s %7.2f s CPU %8d calls %9.0f calls/s %7.1f MB/s %6.0f MB RSS\n", l, t, c, c / t, b / 1e6 / t, $3 / 1024 }' "$timing"
	awk '{ print $1 + $2 }' "$timing" >"$timing.cpu"
	echo "$timing.cpu"
}
echo "dissection benchmark: $(numfmt --to=iec "$bytes") HTTP/1.1 capture ($file), one core"
f=$(measure fathom "$fathom" dissect "$file" | tee /dev/stderr | tail -1)
t=$(measure tshark tshark -r "$file" -n -d "tcp.port==8080,http" -Y http.response -T fields -e http.request.method \
	-e http.request.uri -e http.response.code -e http.response_for.uri | tee /dev/stderr | tail -1)
awk -v f="$(cat "$f")" -v t="$(cat "$t")" 'BEGIN { printf "fathom is %.1fx tshark by CPU time\n", t / f }'
