#!/usr/bin/env bash
# Builds a fully static `fathom` (glibc, Swift runtime and Foundation, libbpf, libelf, libz, libpcap and libdbus all
# linked in) for the kernel-matrix guests and the container image, and prints its path. A scratch path of its own
# keeps the ordinary .build cache: -static-executable changes every module's flags. Needs: libbpf-dev libelf-dev
# zlib1g-dev libpcap-dev (which brings libdbus-1-dev and its libdbus-1.a).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${STATIC_SCRATCH:-$repo/.build-static}
mkdir -p "$scratch"
cc -c -O2 -o "$scratch/sd-daemon-stubs.o" "$repo/Tests/Kernels/sd-daemon-stubs.c"
# glibc's static-link warnings (getaddrinfo, getpwuid, dlopen need the same glibc's NSS modules at run time) are
# expected: they matter only if fathom resolves host or user names, where the image must then carry those modules.
(cd "$repo" && swift build -c release --scratch-path "$scratch" --product fathom \
	--static-swift-stdlib -Xswiftc -static-executable \
	-Xlinker -ldbus-1 -Xlinker "$scratch/sd-daemon-stubs.o") >&2
echo "$scratch/release/fathom"
