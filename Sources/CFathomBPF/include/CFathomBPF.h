/* The one module that includes libbpf's headers (they clash with libpcap's), plus the BPF objects embedded in the
 * binary and the few helpers Swift cannot express: libbpf's option structs are filled through C macros. */
#ifndef CFATHOM_BPF_H
#define CFATHOM_BPF_H
#include <linux/types.h>
#include <stddef.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "../../../bpf/fathom_events.h"

/* bpf/capture.bpf.o, compiled by `make bpf` and embedded at build time. */
const unsigned char *fathom_capture_bpf_object(size_t *size);
/* bpf/tls.bpf.o: TLS plaintext through uprobes. */
const unsigned char *fathom_tls_bpf_object(size_t *size);
/* bpf/process.bpf.o: process exec/exit and TCP socket owners for attribution. */
const unsigned char *fathom_process_bpf_object(size_t *size);

/* Attaches a uprobe (or uretprobe) to `func_name` in `binary` for every process; NULL with errno set on failure. */
struct bpf_link *fathom_bpf_attach_uprobe(struct bpf_program *prog, const char *binary, const char *func_name,
					  size_t offset, int retprobe);

/* Opens an embedded object under a given name; NULL with errno set on failure. */
struct bpf_object *fathom_bpf_open(const unsigned char *data, size_t size, const char *name);

/* Sets a `const volatile` global before load, found by name through the object's BTF. 0 or -errno. */
int fathom_bpf_set_rodata(struct bpf_object *obj, const char *variable, const void *value, size_t size);

/* A BPF ring buffer of `bytes` (a power of two, multiple of the page size). fd or -errno. */
int fathom_bpf_create_ringbuf(const char *name, __u32 bytes);

/* A consumer of one BPF ring buffer of `size` bytes, mapped from its fd (ring.c). The drainer snapshots each ring's
 * producer position, then peeks at heads and releases records one at a time, merging all rings in time order. */
struct fathom_ring;
struct fathom_ring *fathom_ring_open(int fd, __u32 size); /* NULL with errno set on failure */
void fathom_ring_close(struct fathom_ring *ring);
/* Fixes the end of the next pass: records submitted after it wait for the pass after. */
void fathom_ring_snapshot(struct fathom_ring *ring);
/* The oldest submitted record before the snapshot (skipping discarded ones), or NULL. */
const void *fathom_ring_peek(struct fathom_ring *ring, __u32 *length);
/* Hands the peeked record's space back to the kernel. */
void fathom_ring_release(struct fathom_ring *ring);
/* An epoll instance watching every ring fd (-errno on failure), and a wait on it (events or -errno). */
int fathom_rings_epoll(const int *fds, int count);
int fathom_rings_wait(int epfd, int timeout_ms);
/* Sets the calling thread's nice value (the drainer's, above the rest of the agent). 0 or -errno. */
int fathom_thread_set_nice(int nice);

/* tc clsact attach/detach on an interface; `ingress` 1 or 0. 0 or -errno. */
int fathom_bpf_tc_attach(int ifindex, int ingress, int prog_fd);
int fathom_bpf_tc_detach(int ifindex, int ingress);

/* `fathom selftest`'s stand-ins for SSL_write, SSL_write_ex, SSL_read, SSL_read_ex (by that name; NULL otherwise).
 * Their first argument points at a socket fd. "SSL_write buffered" is an SSL_write with a memory BIO: it keeps the
 * "ciphertext" (a copy of the plaintext) for fathom_selftest_flush_buffered to write to a socket afterwards. */
const void *fathom_selftest_ssl_function(const char *name);
int fathom_selftest_ssl_write(void *ssl, const void *buffer, int length);
int fathom_selftest_ssl_write_ex(void *ssl, const void *buffer, size_t length, size_t *written);
int fathom_selftest_ssl_read(void *ssl, void *buffer, int length);
int fathom_selftest_ssl_read_ex(void *ssl, void *buffer, size_t length, size_t *read_bytes);
int fathom_selftest_ssl_write_buffered(void *ssl, const void *buffer, int length);
int fathom_selftest_flush_buffered(int fd);

/* `fathom selftest`'s stand-ins for Go's crypto/tls.(*Conn).Write ("Write") and Read ("Read"): their code and its
 * size in bytes, and a call with Go's register ABI (receiver, slice pointer and length, goroutine in R14). The
 * receiver points at a socket fd; n (or 0 on error) comes back. */
const void *fathom_selftest_go_function(const char *name, size_t *size);
long fathom_selftest_go_call(const void *function, void *receiver, void *buffer, long length, unsigned long goroutine);

/* libbpf's messages (verifier logs included) go to a buffer instead of stderr, so they can be reported. */
void fathom_bpf_capture_log(void);
/* Copies the last messages (NUL-terminated, at most `size` bytes) and clears the buffer. Returns the length. */
size_t fathom_bpf_take_log(char *buffer, size_t size);
#endif
