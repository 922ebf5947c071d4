#!/usr/bin/env bash
# Usage: Tests/Kernels/run-matrix.sh GUEST_BINARY [ARGS…]
#
# Runs `GUEST_BINARY ARGS…` on this host, then inside QEMU on every kernel of Tests/Kernels/kernels.txt, and exits
# non-zero if any run fails. GUEST_BINARY must be statically linked (Tests/Kernels/build-static-fathom.sh, `make
# static`): the guest has no libraries, as a node's container image need not. Each kernel is the newest Debian package
# matching its glob, fetched with `apt-get download` into .build/kernels/debs (reused across runs) and unpacked with
# `dpkg -x`. The guest is an initramfs: busybox, the payload, the tc/veth modules and guest-exit; it mounts
# proc, sysfs, devtmpfs, bpffs, tracefs and cgroup2, brings up lo (the only network), runs the payload and hands its
# exit status to QEMU through the isa-debug-exit device.
#
# Environment:
#   CI=true          a kernel that cannot be fetched fails the run (otherwise it is reported as skipped)
#   KERNELS_FILE     the kernel list (default Tests/Kernels/kernels.txt)
#   KERNELS_CACHE    where the .debs, the unpacked kernels and each run's initramfs live (default .build/kernels)
#   KERNEL_TIMEOUT   seconds one boot + payload may take before it counts as hung (default 120)
#   GUEST_MODULES    modules loaded in the guest before the payload (default: sch_ingress cls_bpf veth)
#   GUEST_CPUS, GUEST_MEMORY   QEMU -smp and -m (default 2 and 1G)
#   KERNEL_EXTRA_ARGS          appended to the guest kernel's command line (e.g. loglevel=7 to see the boot)
# Needs (Debian): qemu-system-x86 busybox-static cpio kmod xz-utils gcc binutils; root for the host run and for
# adding an apt source that kernels.txt names but this machine lacks.
set -uo pipefail

die() { echo "run-matrix: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || die "usage: $0 GUEST_BINARY [ARGS…]"
payload=$(readlink -f "$1") || die "no such file: $1"
[[ -f $payload && -x $payload ]] || die "not an executable file: $1"
command -v readelf >/dev/null || die "readelf not found: apt-get install -y binutils"
if readelf -d "$payload" 2>/dev/null | grep -q '(NEEDED)'; then
	die "$1 needs shared libraries ($(readelf -d "$payload" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ')) and the guest has none: build a static one with Tests/Kernels/build-static-fathom.sh (make static)"
fi
shift
payload_args=("$@")

repo=$(cd "$(dirname "$0")/../.." && pwd)
kernels_file=${KERNELS_FILE:-$repo/Tests/Kernels/kernels.txt}
cache=${KERNELS_CACHE:-$repo/.build/kernels}
timeout_seconds=${KERNEL_TIMEOUT:-120}
guest_modules=${GUEST_MODULES-sch_ingress cls_bpf veth}
guest_cpus=${GUEST_CPUS:-2}
guest_memory=${GUEST_MEMORY:-1G}
in_ci=false
[[ ${CI:-} == true ]] && in_ci=true

for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio depmod:kmod modprobe:kmod \
	xz:xz-utils cc:gcc strip:binutils dpkg:dpkg apt-get:apt; do
	command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found: apt-get install -y ${tool#*:}"
done
busybox=$(command -v busybox)
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: apt-get install -y busybox-static"
[[ -r $kernels_file ]] || die "no kernel list at $kernels_file"

mkdir -p "$cache/debs" "$cache/trees" "$cache/runs" || die "cannot create $cache"
work=$(mktemp -d "$cache/runs/run.XXXXXX") || die "cannot create a work directory in $cache/runs"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- Accelerator: KVM only with real VT-x/AMD-V; a PVM /dev/kvm (kvm_pvm) cannot boot stock kernels. ---
if grep -qwE 'vmx|svm' /proc/cpuinfo && [[ ! -d /sys/module/kvm_pvm && -w /dev/kvm ]]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel tcg)
fi

# --- Kernel list and apt sources ---
globs=()
suites=()
while read -r glob suite _; do
	[[ -z $glob || $glob == \#* ]] && continue
	[[ -n $suite ]] || die "$kernels_file: no suite after $glob"
	globs+=("$glob")
	suites+=("$suite")
done <"$kernels_file"
[[ ${#globs[@]} -gt 0 ]] || die "$kernels_file lists no kernel"

# Adds a deb822 source for each suite kernels.txt names that apt does not know (bookworm-backports on a stock
# Debian 12 machine), then refreshes the package lists once.
ensure_suites() {
	local known suite added=false
	known=$(apt-get indextargets --format '$(CODENAME) $(SUITE)' 2>/dev/null | tr ' ' '\n' | sort -u)
	for suite in $(printf '%s\n' "${suites[@]}" | sort -u); do
		grep -qx -- "$suite" <<<"$known" && continue
		local file=/etc/apt/sources.list.d/debian-$suite.sources
		echo "run-matrix: apt has no $suite suite; adding $file (http://deb.debian.org/debian $suite main)"
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
			"$suite" /usr/share/keyrings/debian-archive-keyring.gpg >"$file" || return 1
		added=true
	done
	if $added; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq || return 1
	fi
}

# The newest package name matching a glob, by version sort.
resolve_package() {
	local glob=$1 name
	apt-cache pkgnames "${glob%%[*?[]*}" 2>/dev/null | while read -r name; do
		[[ $name == $glob ]] && echo "$name"
	done | sort -V | tail -n 1
}

# The newest cached .deb whose package name matches a glob (used when the archive cannot be reached).
cached_deb() {
	local glob=$1 deb
	for deb in "$cache"/debs/*.deb; do
		[[ -e $deb ]] || continue
		local name=${deb##*/}
		[[ ${name%%_*} == $glob ]] && echo "$deb"
	done | sort -V | tail -n 1
}

# Drops cached .debs and unpacked trees of older packages matching a glob once a newer one is in the cache.
prune_superseded() {
	local glob=$1 current=$2 deb name
	for deb in "$cache"/debs/*.deb; do
		[[ -e $deb ]] || continue
		name=${deb##*/}
		name=${name%%_*}
		[[ $name == $glob && $name != "$current" ]] && rm -rf "$deb" "$cache/trees/$name"
	done
}

# Prints the path of the .deb for a glob, fetching it if not cached; on failure prints what was tried to stderr.
fetch_kernel() {
	local glob=$1 suite=$2 package deb
	package=$(resolve_package "$glob")
	if [[ -z $package ]]; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1
		package=$(resolve_package "$glob")
	fi
	if [[ -n $package ]]; then
		deb=$(compgen -G "$cache/debs/${package}_*.deb" | sort -V | tail -n 1)
		if [[ -z $deb ]]; then
			(cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$package") >&2
			deb=$(compgen -G "$cache/debs/${package}_*.deb" | sort -V | tail -n 1)
		fi
		if [[ -n $deb ]]; then
			prune_superseded "$glob" "$package"
			echo "$deb"
			return 0
		fi
	fi
	deb=$(cached_deb "$glob")
	if [[ -n $deb ]]; then
		echo "run-matrix: WARNING: using cached ${deb##*/}: the archive gave nothing for $glob" >&2
		echo "$deb"
		return 0
	fi
	echo "tried: apt-cache pkgnames '${glob%%[*?[]*}' (suite $suite; newest match: ${package:-none})," \
		"apt-get download ${package:-(nothing to download)}, and the cache $cache/debs" >&2
	return 1
}

# Unpacks a kernel .deb once (dpkg -x, then depmod: the .deb has no modules.dep); prints "TREE KVER".
unpack_kernel() {
	local deb=$1 package tree vmlinuz kver
	package=${deb##*/}
	package=${package%%_*}
	tree=$cache/trees/$package
	if [[ ! -e $tree/.unpacked || $tree/.unpacked -ot $deb ]]; then
		rm -rf "$tree"
		dpkg -x "$deb" "$tree" || return 1
		vmlinuz=$(compgen -G "$tree/boot/vmlinuz-*" | head -n 1)
		[[ -n $vmlinuz ]] || { echo "run-matrix: no boot/vmlinuz-* in $deb" >&2; return 1; }
		depmod -b "$tree" "${vmlinuz##*/vmlinuz-}" || return 1
		touch "$tree/.unpacked"
	fi
	vmlinuz=$(compgen -G "$tree/boot/vmlinuz-*" | head -n 1)
	echo "$tree ${vmlinuz##*/vmlinuz-}"
}

shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# --- The part of the initramfs every kernel shares: busybox, guest-exit, the payload, /init. ---
build_common_initramfs() {
	local root=$work/common name quoted=""
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,payload,lib/modules} || return 1
	cp "$busybox" "$root/bin/busybox" || return 1
	cc -static -O2 -o "$root/bin/guest-exit" "$repo/Tests/Kernels/guest-exit.c" || return 1
	name=${payload##*/}
	# Debug info is a third of a Swift binary and every byte is copied through TCG at boot; symbols stay.
	strip --strip-debug -o "$root/payload/$name" "$payload" 2>/dev/null || cp "$payload" "$root/payload/$name" || return 1
	for arg in "${payload_args[@]}"; do quoted+=" $(shell_quote "$arg")"; done
	cat >"$root/init" <<-EOF
		#!/bin/busybox sh
		/bin/busybox --install -s /bin
		export PATH=/bin
		mount -t proc proc /proc
		mount -t sysfs sysfs /sys
		mount -t devtmpfs devtmpfs /dev
		mount -t bpf bpf /sys/fs/bpf
		mount -t tracefs tracefs /sys/kernel/tracing
		mount -t cgroup2 cgroup2 /sys/fs/cgroup
		ip link set lo up
		while read -r module; do
			insmod "/lib/modules/\$module" || echo "init: insmod \$module failed"
		done </lib/modules/load-order
		echo "init: running $name$quoted on \$(uname -r), \$(cut -d' ' -f1 /proc/uptime) s after boot"
		cd /payload
		./$(shell_quote "$name")$quoted
		status=\$?
		echo "init: $name exited with status \$status at \$(cut -d' ' -f1 /proc/uptime) s"
		if [ \$status -ne 0 ]; then
			echo "init: the kernel's log, last 40 lines:"
			dmesg | tail -n 40
		fi
		guest-exit \$status
		poweroff -f
	EOF
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/common.cpio"
}

# One kernel's initramfs: the shared part, then (a second cpio archive, which the kernel unpacks on top) its modules.
build_kernel_initramfs() {
	local tree=$1 kver=$2 out=$3 root=$work/modules-$kver line module name
	rm -rf "$root"
	mkdir -p "$root/lib/modules" || return 1
	: >"$root/lib/modules/load-order"
	for module in $guest_modules; do
		if ! modprobe -d "$tree" -S "$kver" --show-depends "$module" >"$work/deps" 2>&1; then
			echo "run-matrix: $kver has no module $module: $(cat "$work/deps")" >&2
			return 1
		fi
		while read -r line; do
			[[ $line == insmod\ * ]] || continue
			module=${line#insmod }
			module=${module%% *}
			name=${module##*/}
			name=${name%.xz}
			name=${name%.zst}
			grep -qxF -- "$name" "$root/lib/modules/load-order" && continue
			case $module in
			*.xz) xz -dc "$module" >"$root/lib/modules/$name" ;;
			*.zst) zstd -qdc "$module" >"$root/lib/modules/$name" ;;
			*) cp "$module" "$root/lib/modules/$name" ;;
			esac || return 1
			echo "$name" >>"$root/lib/modules/load-order"
		done <"$work/deps"
	done
	(cd "$root" && find . | cpio -o -H newc --quiet) | cat "$work/common.cpio" - >"$out"
}

# --- Runs ---
results=()   # "NAME|VERDICT|SECONDS|LOG"
passed=0 failed=0 skipped=0

record() {
	results+=("$1|$2|$3|$4")
	case $2 in
	PASS) passed=$((passed + 1)) ;;
	SKIP*) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
}

run_host() {
	local log=$work/host.log start rc verdict
	echo "=== host $(uname -r): ${payload##*/} ${payload_args[*]}"
	start=$(now)
	timeout -k 5 "$timeout_seconds" "$payload" "${payload_args[@]}" 2>&1 | tee "$log" | sed -u 's/^/  host| /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) verdict=PASS ;;
	124) verdict="FAIL (timed out after ${timeout_seconds}s)" ;;
	*) verdict="FAIL (exit status $rc)" ;;
	esac
	record "host $(uname -r)" "$verdict" "$(elapsed "$start")" "$log"
}

run_kernel() {
	local glob=$1 suite=$2 deb tree kver initrd log start rc verdict
	echo "=== $glob"
	if ! deb=$(fetch_kernel "$glob" "$suite" 2>"$work/fetch.err"); then
		cat "$work/fetch.err"
		local why="cannot download $glob; $(tail -n 1 "$work/fetch.err")"
		if $in_ci; then
			record "$glob" "FAIL ($why)" 0 /dev/null
		else
			record "$glob" "SKIP ($why; with CI=true this fails)" 0 /dev/null
		fi
		return
	fi
	cat "$work/fetch.err"
	read -r tree kver < <(unpack_kernel "$deb") || true
	if [[ -z ${kver:-} ]]; then
		record "$glob" "FAIL (cannot unpack ${deb##*/})" 0 /dev/null
		return
	fi
	initrd=$work/initramfs-$kver.cpio
	if ! build_kernel_initramfs "$tree" "$kver" "$initrd"; then
		record "$kver" "FAIL (cannot build the initramfs)" 0 /dev/null
		return
	fi
	echo "=== $kver (${deb##*/}, ${accel[*]}): ${payload##*/} ${payload_args[*]}"
	log=$work/$kver.log
	start=$(now)
	# no_timer_check: under TCG on a busy host the boot-time IO-APIC timer check can miss ticks and panic.
	timeout -k 5 "$timeout_seconds" qemu-system-x86_64 "${accel[@]}" -smp "$guest_cpus" -m "$guest_memory" \
		-nodefaults -no-user-config -display none -serial stdio -no-reboot -nic none \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$tree/boot/vmlinuz-$kver" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet no_timer_check ${KERNEL_EXTRA_ARGS:-}" </dev/null 2>&1 | tr -d '\r' | tee "$log" | sed -u "s/^/  $kver| /"
	rc=${PIPESTATUS[0]}
	# isa-debug-exit makes QEMU exit with (status << 1) | 1; 0 means the guest rebooted or panicked first.
	if ((rc == 124 || rc == 137)); then
		verdict="FAIL (timed out after ${timeout_seconds}s)"
	elif ((rc % 2 == 1)); then
		((rc == 1)) && verdict=PASS || verdict="FAIL (payload exit status $(((rc - 1) / 2)))"
	else
		verdict="FAIL (guest ended without reporting a status: QEMU exit $rc, see the console above)"
	fi
	record "$kver" "$verdict" "$(elapsed "$start")" "$log"
}

matrix_start=$(now)
run_host
if ! ensure_suites; then
	echo "run-matrix: could not add the missing apt suites (needs root)" >&2
fi
if ! build_common_initramfs; then
	die "cannot build the initramfs for $payload"
fi
for i in "${!globs[@]}"; do
	run_kernel "${globs[$i]}" "${suites[$i]}"
done

echo
echo "=== Kernel matrix (${accel[*]}), ${payload##*/} ${payload_args[*]}"
for result in "${results[@]}"; do
	IFS='|' read -r name verdict seconds log <<<"$result"
	printf '%-40s %-6s %6ss\n' "$name" "${verdict%% *}" "$seconds"
	[[ $verdict == *\ * ]] && echo "    ${verdict#* }"
	# The payload's per-program lines (selftest format: "PROGRAM: PASS|FAIL|SKIP …").
	grep -E '^[A-Za-z0-9_.-]+: (PASS|FAIL|SKIP)' "$log" | sed 's/^/    /'
done
echo "total $(elapsed "$matrix_start")s"
echo "kernels: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
