# The two commands: `make run` and `make test`. Each installs what is missing, builds, then runs.
SHELL := /bin/bash
CLANG ?= /opt/swift/usr/bin/clang
SWIFT ?= swift
BPF_SOURCES := $(wildcard bpf/*.bpf.c)
BPF_OBJECTS := $(BPF_SOURCES:.bpf.c=.bpf.o)
BPF_CFLAGS := -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror -ffile-prefix-map=$(CURDIR)=. -Ibpf

.PHONY: bpf bpf-check
bpf: $(BPF_OBJECTS)

bpf/%.bpf.o: bpf/%.bpf.c bpf/fathom_events.h bpf/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The objects are committed so a node needs no compiler; this fails when one no longer matches its source.
bpf-check:
	@tmp=$$(mktemp -d); status=0; \
	for src in $(BPF_SOURCES); do \
		obj=$${src%.bpf.c}.bpf.o; \
		$(CLANG) $(BPF_CFLAGS) -c $$src -o $$tmp/out.o || exit 1; \
		if ! cmp -s $$tmp/out.o $$obj; then echo "stale: $$obj (run 'make bpf' and commit it)"; status=1; fi; \
	done; rm -rf $$tmp; exit $$status
