#!/usr/bin/env bash
# Measures KFL full-scan evaluation (filters nothing can push down) over 1M in-memory calls on one core.
# Builds FathomModel, FathomKFL and scripts/KFLBench.swift with -O into .build/kfl-bench; prints M calls/s per filter.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.build/kfl-bench"
mkdir -p "$out"
flags=(-O -g -wmo -parse-as-library -swift-version 6 -I "$out")
swiftc "${flags[@]}" -module-name FathomModel -emit-library -static -emit-module -emit-module-path "$out/FathomModel.swiftmodule" \
    -o "$out/libFathomModel.a" "$root"/Sources/FathomModel/*.swift
swiftc "${flags[@]}" -module-name FathomKFL -emit-library -static -emit-module -emit-module-path "$out/FathomKFL.swiftmodule" \
    -o "$out/libFathomKFL.a" "$root"/Sources/FathomKFL/*.swift
swiftc "${flags[@]}" -module-name KFLBench "$root/scripts/KFLBench.swift" "$out/libFathomKFL.a" "$out/libFathomModel.a" \
    -o "$out/kfl-bench"
exec taskset -c 0 "$out/kfl-bench"
