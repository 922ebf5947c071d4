# The two commands: `make run` and `make test`. Each installs what is missing, builds, then runs.
SHELL := /bin/bash
CLANG ?= /opt/swift/usr/bin/clang
SWIFT ?= swift
DATA_DIR ?= /var/lib/fathom
LISTEN ?= 127.0.0.1:8421
FATHOM := .build/release/fathom
# Fully static (Tests/Kernels/build-static-fathom.sh): what the image ships, the kernel matrix boots and the
# integration tests drive.
STATIC_FATHOM := .build-static/release/fathom

KERNEL_MATRIX_PACKAGES := qemu-system-x86 busybox-static cpio kmod xz-utils binutils
# Real servers and load generators for the benchmark captures (bench/make-mixed-capture.sh).
BENCH_PACKAGES := nginx-light wrk nghttp2-client nghttp2-server dnsmasq-base bpftrace
# Debian packages the build, the tests and the benchmarks need.
APT_PACKAGES := libbpf-dev libelf-dev zlib1g-dev libzstd-dev libpcap-dev libsqlite3-dev bpftool tcpdump tshark \
	iproute2 util-linux time python3 python3-pip curl openssl nodejs gcc make dpkg-dev golang-go \
	$(KERNEL_MATRIX_PACKAGES) $(BENCH_PACKAGES)
PIP_PACKAGES := pytest ja4plus mcp checkov kubernetes_validate grpcio

BPF_SOURCES := $(wildcard bpf/*.bpf.c)
BPF_OBJECTS := $(BPF_SOURCES:.bpf.c=.bpf.o)
BPF_CFLAGS := -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror -ffile-prefix-map=$(CURDIR)=. -Ibpf

.PHONY: run test deps build build-release bpf bpf-check go-tls-binaries unit-test fuzz-smoke integration-test test-kernels static bench root

run: root deps build-release
	mkdir -p $(DATA_DIR)
	$(FATHOM) agent --data-dir $(DATA_DIR) --listen $(LISTEN)

test: root deps bpf-check build unit-test fuzz-smoke static integration-test test-kernels

root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "fathom loads BPF programs and installs packages: run 'sudo make $(MAKECMDGOALS)' instead."; exit 1; fi

# Installs only what is missing, so a second run costs nothing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@for p in $(PIP_PACKAGES); do pip show -q $$p >/dev/null 2>&1 || pip install -q $$p; done
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

build:
	$(SWIFT) build

build-release:
	$(SWIFT) build -c release

# Go TLS peers for the unit tests: .gopclntab discovery reads the stripped one, the x86-64 decoder is checked against
# objdump on the one with symbols (objdump lists no functions in a stripped binary).
GO_TLS := .build/go/gotls
GO_ENV := HOME=$(CURDIR)/.build/go GOCACHE=$(CURDIR)/.build/go/cache GO111MODULE=off CGO_ENABLED=0
go-tls-binaries:
	mkdir -p .build/go
	$(GO_ENV) go build -o $(GO_TLS) Tests/Integration/go_tls/main.go
	$(GO_ENV) go build -ldflags="-s -w" -o $(GO_TLS)-stripped Tests/Integration/go_tls/main.go

unit-test: go-tls-binaries
	FATHOM_GO_BINARY=$(GO_TLS)-stripped FATHOM_X86_CORPUS=$(GO_TLS) $(SWIFT) test

integration-test: static
	FATHOM=$(STATIC_FATHOM) python3 -m pytest -q Tests/Integration

# Every parser under libFuzzer for a few seconds: a crash or a hang fails the build (scripts/fuzz.sh NAME SECONDS for
# a longer run).
FUZZ_SECONDS ?= 5
fuzz-smoke:
	@for harness in Fuzz/*Fuzz.swift; do \
		name=$$(basename $$harness Fuzz.swift); \
		scripts/fuzz.sh $$name $(FUZZ_SECONDS) > .build/fuzz-$$name.log 2>&1 || { tail -20 .build/fuzz-$$name.log; exit 1; }; \
		echo "fuzz $$name: clean for $(FUZZ_SECONDS) s"; \
	done

# Every BPF program proven on Debian's 6.1 and 6.12 kernels under QEMU, and on this host (Tests/Kernels/README.md).
test-kernels: static
	Tests/Kernels/run-matrix.sh $(STATIC_FATHOM) selftest

# A fully static fathom (glibc, Swift runtime, libbpf, libpcap… linked in) for the image and the kernel matrix.
static: root deps
	Tests/Kernels/build-static-fathom.sh

bench: root deps build-release
	FATHOM=$(FATHOM) CLANG=$(CLANG) python3 bench/run.py
	FATHOM=$(FATHOM) python3 bench/live_dissect.py
	FATHOM=$(FATHOM) LIVE_BODY_BYTES=100 BENCH_RUNS=5 python3 bench/live_dissect.py
	bench/dissect.sh $(FATHOM)
	scripts/kfl-bench.sh
	python3 bench/kfl_bench.py
	FATHOM=$(FATHOM) python3 bench/mcp_latency.py 1000000
	FATHOM=$(FATHOM) python3 bench/snapshot.py
	bench/tls.sh $(FATHOM) 8 16
	FATHOM=$(FATHOM) python3 bench/attribution.py

bpf: $(BPF_OBJECTS)

bpf/%.bpf.o: bpf/%.bpf.c bpf/fathom_events.h bpf/fathom_helpers.h bpf/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The objects are committed so a node needs no compiler; this fails when one no longer matches its source.
bpf-check:
	@tmp=$$(mktemp -d); status=0; \
	for src in $(BPF_SOURCES); do \
		obj=$${src%.bpf.c}.bpf.o; \
		$(CLANG) $(BPF_CFLAGS) -c $$src -o $$tmp/out.o || exit 1; \
		if ! cmp -s $$tmp/out.o $$obj; then echo "stale: $$obj (run 'make bpf' and commit it)"; status=1; fi; \
	done; rm -rf $$tmp; exit $$status
