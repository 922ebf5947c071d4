#!/usr/bin/env bash
# Builds the benchmark with -O and FathomDissect's Package.swift flags (static modules) and runs it on a capture, then times
# tshark extracting the same HTTP fields from the same file. Usage: run.sh FILE.pcap [HTTP_PORT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
file=${1:?usage: run.sh FILE.pcap [HTTP_PORT]}
port=${2:-8080}
out="$root/.build/dissect-bench"
mkdir -p "$out"
flags=(-O -wmo -parse-as-library -swift-version 6)
swiftc "${flags[@]}" -module-name FathomModel -emit-library -static -emit-module \
    -emit-module-path "$out/FathomModel.swiftmodule" -o "$out/libFathomModel.a" "$root"/Sources/FathomModel/*.swift
swiftc "${flags[@]}" -enforce-exclusivity=unchecked -module-name FathomDissect -I "$out" -emit-library -static -emit-module \
    -emit-module-path "$out/FathomDissect.swiftmodule" -o "$out/libFathomDissect.a" "$root"/Sources/FathomDissect/*.swift
swiftc "${flags[@]}" -module-name DissectBenchmark -I "$out" "$here/DissectBenchmark.swift" \
    "$here/../Support/TestPcapReader.swift" "$out/libFathomDissect.a" "$out/libFathomModel.a" -o "$out/dissect-benchmark"
echo "== fathom engine (one core)"
taskset -c 0 "$out/dissect-benchmark" "$file"
echo "== tshark -T fields (same HTTP fields)"
# tshark is timed by its CPU time (user + system) too: the machine is shared.
calls=$( { /usr/bin/time -f "%U %S" -o "$out/tshark.time" taskset -c 1 tshark -r "$file" -n -d "tcp.port==$port,http" \
    -Y http.response -T fields -e http.request.method -e http.request.uri -e http.response.code \
    -e http.response_for.uri 2>/dev/null; } | wc -l)
awk -v c="$calls" -v b="$(stat -c %s "$file")" '{ t = $1 + $2; printf "cpu  %.3f s  %d calls  %.0f calls/s  %.1f MB/s\n", t, c, c / t, b / 1e6 / t }' \
    "$out/tshark.time"
