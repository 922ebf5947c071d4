#!/usr/bin/env bash
# Builds the harness's stand-in payload (bpfload.c, to be replaced by `fathom selftest`) and prints its path:
# compiles bpf/capture.bpf.c with the Swift toolchain's clang, embeds the object and links bpfload -static against
# Debian's libbpf.a, libelf.a and libz.a. Needs: libbpf-dev libelf-dev zlib1g-dev.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${STANDIN_DIR:-$repo/.build/kernels/standin}
clang=${BPF_CLANG:-/opt/swift/usr/bin/clang}
mkdir -p "$out"
"$clang" -target bpf -D__TARGET_ARCH_x86 -O2 -g -I"$repo/bpf" -c "$repo/bpf/capture.bpf.c" -o "$out/capture.bpf.o"
# #embed needs C23 (clang); --embed-dir lets it find capture.bpf.o.
"$clang" -std=gnu23 -O2 -Wall -Wextra -Werror -I"$repo/bpf" --embed-dir="$out" "$repo/Tests/Kernels/bpfload.c" \
	-static -lbpf -lelf -lz -o "$out/bpfload" >&2
echo "$out/bpfload"
