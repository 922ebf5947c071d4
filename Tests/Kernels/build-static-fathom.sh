#!/usr/bin/env bash
# Builds a fully static `fathom` (glibc, the Swift runtime and Foundation, libbpf, libelf, libz, libpcap, libdbus and
# a minimal libcurl all linked in; `ldd` says "not a dynamic executable") for the kernel-matrix guests and the
# container image, and prints its path. A scratch path of its own keeps the ordinary .build cache:
# -static-executable changes every module's flags.
# Needs (Debian): libbpf-dev libelf-dev zlib1g-dev libzstd-dev libpcap-dev (which brings libdbus-1-dev and its
# libdbus-1.a), and for the libcurl (build-static-libcurl.sh explains why it is needed): dpkg-dev gcc make.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${STATIC_SCRATCH:-$repo/.build-static}
mkdir -p "$scratch"
cc -c -O2 -o "$scratch/sd-daemon-stubs.o" "$repo/Tests/Kernels/sd-daemon-stubs.c"
libcurl=$("$repo/Tests/Kernels/build-static-libcurl.sh" "$scratch/libcurl")
# glibc's static-link warnings (getaddrinfo, getpwuid, dlopen need the same glibc's NSS modules at run time) are
# expected: glibc ≥ 2.34 carries the files and dns NSS modules in libc itself, so host names resolve from
# /etc/hosts and DNS; only other NSS sources (LDAP users, mDNS) would need the modules in the image.
(cd "$repo" && swift build -c release --scratch-path "$scratch" --product fathom \
	--static-swift-stdlib -Xswiftc -static-executable \
	-Xlinker -L"$libcurl/lib" -Xlinker -ldbus-1 -Xlinker "$scratch/sd-daemon-stubs.o") >&2
binary=$scratch/release/fathom
if readelf -d "$binary" | grep -q '(NEEDED)'; then
	echo "build-static-fathom: $binary still needs shared libraries:" >&2
	readelf -d "$binary" | grep '(NEEDED)' >&2
	exit 1
fi
echo "$binary"
