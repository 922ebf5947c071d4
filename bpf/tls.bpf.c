// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* TLS plaintext: uprobes on SSL_write/SSL_write_ex (entry) and SSL_read/SSL_read_ex (entry + return) of OpenSSL and
 * BoringSSL, and on Go's crypto/tls.(*Conn).Write/Read (entry + every RET), joined to their connection through the read/write-family syscall the library makes inside the call on
 * the same thread (the nested-syscall trick): the syscall names the fd, the task's file table gives the socket.
 * Records go into the same per-CPU rings as the packets (user space hands this object capture's `rings` map). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "fathom_events.h"
#include "fathom_helpers.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000

const volatile struct fathom_tls_config tls_config = {
	.max_bytes_per_call = 1 << 20,
	.wakeup_bytes = 256 * 1024,
};

struct ring_template {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
};

/* Reused from the capture object (bpf_map__reuse_fd): one ring per CPU shared by packets and plaintext. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct ring_template);
} rings SEC(".maps");

/* TLS records lost because the CPU's ring was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tls_losses SEC(".maps");

/* pids that just called exec, for user space to scan. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exec_events SEC(".maps");

/* A TLS call in progress on a thread, keyed by pid_tgid. */
struct tls_call {
	__u64 ssl;
	__u64 buffer;
	__u64 length;       /* write: the bytes asked for; read: unused */
	__u64 read_bytes;   /* SSL_read_ex: where the library stores the count */
	__s32 fd;           /* read: the fd the SSL* used last (-1: none yet) until a nested syscall names it */
	__u8 direction;
	__u8 fd_named;      /* read: a nested syscall named fd; later ones change nothing */
	__u8 reserved[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_call);
} calls SEC(".maps");

/* The fd an SSL* was last seen using: reads served from the library's buffer make no syscall. */
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* Per connection, keyed by the struct sock address: plaintext bytes seen so far each way, and the connection's
 * addresses and ports, read once. A later call reads only the socket's cookie and port pair: a socket that reuses the
 * address differs in one of them, and then starts afresh, its offsets at 0. A cookie is made the first time something
 * asks for it (the capture program, at the socket's next packet): a connection first seen without one (opened before
 * the agent) takes it then and keeps its offsets. */
struct connection {
	__u64 egress;
	__u64 ingress;
	__u64 cookie;
	__u32 ports; /* skc_portpair as read */
	__u16 family;
	__u16 local_port;
	__u16 remote_port;
	__u16 reserved[3];
	__u32 local_addr[4];
	__u32 remote_addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct connection);
} connections SEC(".maps");

struct tls_record {
	struct fathom_tls_header header;
	__u8 data[FATHOM_TLS_CHUNK];
};

/* Where a record is assembled before bpf_ringbuf_output copies exactly its length into the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_record);
} scratch SEC(".maps");

/* fd → struct file → struct socket → struct sock through the current task's file table; NULL if not a socket. Nine
 * kernel reads: the hot paths call it once per TLS call at most. */
static __always_inline struct sock *sock_of_fd(__s32 fd)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	struct file **table = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &table[fd]) < 0 || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *socket = BPF_CORE_READ(file, private_data);
	return socket ? BPF_CORE_READ(socket, sk) : NULL;
}

/* Reads the addresses and ports of the socket into `c`; false when it is not an IPv4/IPv6 socket. */
static __always_inline bool describe_connection(struct connection *c, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		c->local_addr[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		c->remote_addr[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&c->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&c->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return false;
	}
	c->family = family;
	c->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return true;
}

/* The connection of socket `sk`, described on its first call (or when the address now holds another socket); NULL
 * when it is not an IPv4/IPv6 socket. */
static __always_inline struct connection *connection_of(struct sock *sk)
{
	__u64 key = (__u64)sk;
	__u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	__u32 ports = BPF_CORE_READ(sk, __sk_common.skc_portpair);
	struct connection *c = bpf_map_lookup_elem(&connections, &key);
	if (c && c->ports == ports && (c->cookie == cookie || c->cookie == 0)) {
		c->cookie = cookie;
		return c;
	}
	struct connection fresh = { .cookie = cookie, .ports = ports };
	if (!describe_connection(&fresh, sk))
		return NULL;
	bpf_map_update_elem(&connections, &key, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&connections, &key);
}

struct chunk_loop {
	__u64 buffer;
	__u64 copied; /* bytes of the call copied: min(length, cap) */
	__u64 length;
	__u64 base_offset;
};

/* One chunk of a call: the header prepared in `scratch` by emit_call, this chunk's bytes, into this CPU's ring. */
static long emit_chunk(__u32 index, void *context)
{
	struct chunk_loop *loop = context;
	__u32 zero = 0;
	struct tls_record *record = bpf_map_lookup_elem(&scratch, &zero);
	if (!record)
		return 1;
	struct fathom_tls_header *h = &record->header;
	__u64 done = (__u64)index * FATHOM_TLS_CHUNK;
	if (done >= loop->copied)
		return 1;
	__u64 rest = loop->copied - done;
	__u32 chunk = rest > FATHOM_TLS_CHUNK ? FATHOM_TLS_CHUNK : (__u32)rest;
	/* Keep the bound visible to 6.1's verifier (see capture.bpf.c). */
	asm volatile("" : "+r"(chunk));
	if (chunk > FATHOM_TLS_CHUNK)
		return 1;
	h->stream_offset = loop->base_offset + done;
	h->call_offset = done;
	h->chunk_length = chunk;
	if (done + chunk >= loop->copied && loop->copied < loop->length)
		h->flags |= FATHOM_TLS_TRUNCATED;
	if (bpf_probe_read_user(record->data, chunk, (const void *)(loop->buffer + done)) < 0)
		h->flags |= FATHOM_TLS_COPY_FAILED;
	else
		h->flags &= ~FATHOM_TLS_COPY_FAILED;
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring)
		return 1;
	__u64 wake = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= tls_config.wakeup_bytes ? BPF_RB_FORCE_WAKEUP
											  : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(ring, record, sizeof(*h) + chunk, wake) < 0)
		count_in(&tls_losses);
	return 0;
}

/* Emits a TLS call's plaintext as records of at most FATHOM_TLS_CHUNK bytes, up to the per-call cap, joined to the
 * connection of socket `sk` (NULL: not joined). */
static __always_inline void emit_call(struct sock *sk, __u8 direction, const __u8 *buffer, __u64 length)
{
	__u32 zero = 0;
	struct tls_record *record = bpf_map_lookup_elem(&scratch, &zero);
	if (!record)
		return;
	struct fathom_tls_header *h = &record->header;
	__builtin_memset(h, 0, sizeof(*h));
	__u64 id = bpf_get_current_pid_tgid();
	h->timestamp_ns = bpf_ktime_get_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->kind = FATHOM_RECORD_TLS;
	h->direction = direction;
	h->call_length = length;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));

	struct connection *c = sk ? connection_of(sk) : NULL;
	if (c) {
		h->family = c->family;
		h->local_port = c->local_port;
		h->remote_port = c->remote_port;
		__builtin_memcpy(h->local_addr, c->local_addr, sizeof(h->local_addr));
		__builtin_memcpy(h->remote_addr, c->remote_addr, sizeof(h->remote_addr));
		h->socket_cookie = c->cookie;
		h->connection_id = (__u64)sk;
		h->stream_offset = __sync_fetch_and_add(direction == FATHOM_DIRECTION_EGRESS ? &c->egress : &c->ingress,
							length);
	} else {
		h->flags |= FATHOM_TLS_UNJOINED;
	}

	__u64 copied = length;
	__u32 cap = tls_config.max_bytes_per_call;
	if (copied > cap)
		copied = cap;
	struct chunk_loop loop = {
		.buffer = (__u64)buffer,
		.copied = copied,
		.length = length,
		.base_offset = h->stream_offset,
	};
	/* bpf_loop: the verifier checks the body once instead of once per chunk. */
	bpf_loop((copied + FATHOM_TLS_CHUNK - 1) / FATHOM_TLS_CHUNK, emit_chunk, &loop, 0);
}

/* An LRU update allocates and links a new element: looked up first, the same fd again costs a lookup only. */
static __always_inline void remember_fd(__u64 ssl, __s32 fd)
{
	struct ssl_key key = { .ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	__s32 *known = bpf_map_lookup_elem(&ssl_fds, &key);
	if (known && *known == fd)
		return;
	bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
}

static __always_inline __s32 known_fd(__u64 ssl)
{
	struct ssl_key key = { .ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	__s32 *fd = bpf_map_lookup_elem(&ssl_fds, &key);
	return fd ? *fd : -1;
}

/* Memory-BIO libraries (Node) move ciphertext in their own event loop, after their calls return: an SSL* whose fd
 * is still unknown when a read returns waits here, by thread, for the thread's next write to a socket (the flush of
 * that connection's handshake output), which names its fd before its first SSL_write returns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} awaiting_fd SEC(".maps");

/* Entries in `awaiting_fd`: while 0, syscalls skip its lookup (the common case). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} awaiting_count SEC(".maps");

static __always_inline void await_fd(__u64 ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	bool counted = bpf_map_lookup_elem(&awaiting_fd, &id) != NULL;
	if (bpf_map_update_elem(&awaiting_fd, &id, &ssl, BPF_ANY) == 0 && !counted)
		adjust_gauge(&awaiting_count, 1);
}

/* A socket write on a thread with an SSL* awaiting its fd: that fd is the SSL*'s. */
static __always_inline void name_awaited_fd(__u64 id, __s32 fd)
{
	__u64 *ssl = bpf_map_lookup_elem(&awaiting_fd, &id);
	if (!ssl || !sock_of_fd(fd))
		return;
	remember_fd(*ssl, fd);
	if (bpf_map_delete_elem(&awaiting_fd, &id) == 0)
		adjust_gauge(&awaiting_count, -1);
}

/* A read starts with the fd its SSL* used last: its nested syscall, on that fd, then has nothing to do but confirm it. */
static __always_inline void enter_call(void *ssl, const void *buffer, __u64 length, void *read_bytes, __u8 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call call = {
		.ssl = (__u64)ssl,
		.buffer = (__u64)buffer,
		.length = length,
		.read_bytes = (__u64)read_bytes,
		.fd = direction == FATHOM_DIRECTION_INGRESS ? known_fd((__u64)ssl) : -1,
		.direction = direction,
	};
	bpf_map_update_elem(&calls, &id, &call, BPF_ANY);
}

/* SSL_set_fd names the connection's fd outright (curl, Python, most servers call it once per connection): reads
 * served from the library's buffer before any syscall of the new connection are then not joined to an old fd that
 * an earlier SSL* at the same address used. */
SEC("uprobe")
int BPF_KPROBE(tls_ssl_set_fd, void *ssl, int fd)
{
	remember_fd((__u64)ssl, fd);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_ssl_write, void *ssl, const void *buffer, int length)
{
	if (length > 0)
		enter_call(ssl, buffer, (__u64)length, NULL, FATHOM_DIRECTION_EGRESS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_ssl_write_ex, void *ssl, const void *buffer, __u64 length, void *written)
{
	if (length > 0)
		enter_call(ssl, buffer, length, written, FATHOM_DIRECTION_EGRESS);
	return 0;
}

/* At the return of a call: `result` (and for the _ex forms the count they store) says how many bytes it moved.
 * A read's real length is known only here; its fd came from a nested syscall, else from an earlier one, else it waits
 * for the thread's next socket write (memory BIOs). Return probes on writes are attached only to libraries with memory
 * BIOs (executables carrying their own OpenSSL, such as Node): their ciphertext leaves after the call, and the
 * plaintext buffer may be freed by then, so a write that no nested syscall joined is emitted here, while its buffer is
 * still valid. A failed attempt (a connection's first request is retried while the handshake completes) emits
 * nothing. */
static __always_inline void leave_call(__s64 result, bool extended, __u8 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&calls, &id);
	if (!call || call->direction != direction)
		return;
	struct tls_call c = *call;
	bpf_map_delete_elem(&calls, &id);
	if (direction == FATHOM_DIRECTION_INGRESS && c.fd < 0 && known_fd(c.ssl) < 0)
		await_fd(c.ssl);
	__u64 length = 0;
	if (extended) {
		if (result != 1 || !c.read_bytes || bpf_probe_read_user(&length, sizeof(length), (void *)c.read_bytes) < 0)
			return;
	} else {
		if (result <= 0)
			return;
		length = (__u64)result;
	}
	if (length == 0 || (direction == FATHOM_DIRECTION_EGRESS && length > c.length))
		return;
	emit_call(sock_of_fd(c.fd >= 0 ? c.fd : known_fd(c.ssl)), direction, (const __u8 *)c.buffer, length);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_ssl_write_return, int result)
{
	leave_call(result, false, FATHOM_DIRECTION_EGRESS);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_ssl_write_ex_return, int result)
{
	leave_call(result, true, FATHOM_DIRECTION_EGRESS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_ssl_read, void *ssl, void *buffer)
{
	enter_call(ssl, buffer, 0, NULL, FATHOM_DIRECTION_INGRESS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_ssl_read_ex, void *ssl, void *buffer, __u64 length, void *read_bytes)
{
	enter_call(ssl, buffer, 0, read_bytes, FATHOM_DIRECTION_INGRESS);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_ssl_read_return, int result)
{
	leave_call(result, false, FATHOM_DIRECTION_INGRESS);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_ssl_read_ex_return, int result)
{
	leave_call(result, true, FATHOM_DIRECTION_INGRESS);
	return 0;
}

/* Go crypto/tls: (*Conn).Write and (*Conn).Read, probed at their entry and at every RET instruction (a uretprobe
 * would rewrite the return address on a stack the Go runtime moves). Go >= 1.17 passes arguments in registers
 * (receiver in RAX, the slice's pointer and length in RBX and RCX; the result n comes back in RAX) and keeps the
 * running goroutine in R14. A goroutine may move to another thread between its entry and its syscall, so its call in
 * progress is keyed by goroutine; the nested syscall finds it through the R14 of the thread's user registers. */
struct go_call_key {
	__u32 tgid;
	__u32 reserved;
	__u64 goroutine;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_call_key);
	__type(value, struct tls_call);
} go_calls SEC(".maps");

/* Go calls in progress on the node: while 0, syscalls skip the goroutine lookup (the common case). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} go_in_flight SEC(".maps");

static __always_inline void count_go_calls(__s64 change)
{
	adjust_gauge(&go_in_flight, change);
}

static __always_inline struct go_call_key go_key(__u64 goroutine)
{
	struct go_call_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .goroutine = goroutine };
	return key;
}

static __always_inline void go_enter(struct pt_regs *ctx, __u8 direction)
{
	__s64 length = (__s64)ctx->cx;
	if (direction == FATHOM_DIRECTION_EGRESS && length <= 0)
		return;
	struct go_call_key key = go_key(ctx->r14);
	struct tls_call call = {
		.ssl = ctx->ax,
		.buffer = ctx->bx,
		.length = direction == FATHOM_DIRECTION_EGRESS ? (__u64)length : 0,
		.fd = -1,
		.direction = direction,
	};
	/* The entry fires again when the goroutine's stack grows (the prologue calls morestack, then restarts the
	 * function): count the call once. */
	if (bpf_map_update_elem(&go_calls, &key, &call, BPF_NOEXIST) == 0)
		count_go_calls(1);
	else
		bpf_map_update_elem(&go_calls, &key, &call, BPF_EXIST);
}

/* When no syscall named the fd (a read served from bytes the handshake already buffered: TLS 1.3 clients send their
 * first request with their Finished message), the fd through Go's structures, laid out so since Go 1.9:
 * tls.Conn.conn is a net.Conn interface at offset 0 (its data word at 8) holding a *net.TCPConn, whose *netFD is at
 * offset 0, whose poll.FD.Sysfd is at offset 16 (after the 16-byte fdMutex). Trusted only if it is a socket. */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
	__u64 tcp_conn = 0, net_fd = 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&tcp_conn, sizeof(tcp_conn), (void *)(conn + 8)) < 0 || !tcp_conn)
		return -1;
	if (bpf_probe_read_user(&net_fd, sizeof(net_fd), (void *)tcp_conn) < 0 || !net_fd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(net_fd + 16)) < 0 || fd < 0 || fd > 0x7fffffff)
		return -1;
	return sock_of_fd((__s32)fd) ? (__s32)fd : -1;
}

/* At a RET: the call is over. A read emits the n bytes it returned; a write whose nested syscall already emitted it
 * is gone from the map; one that made no syscall (an error before any) is emitted only if it reports bytes written. */
static __always_inline void go_leave(struct pt_regs *ctx)
{
	struct go_call_key key = go_key(ctx->r14);
	struct tls_call *call = bpf_map_lookup_elem(&go_calls, &key);
	if (!call)
		return;
	struct tls_call c = *call;
	if (bpf_map_delete_elem(&go_calls, &key) == 0)
		count_go_calls(-1);
	__s64 result = (__s64)ctx->ax;
	if (result <= 0)
		return;
	__u64 length = (__u64)result;
	if (c.direction == FATHOM_DIRECTION_EGRESS && length > c.length)
		return;
	__s32 fd = c.fd >= 0 ? c.fd : known_fd(c.ssl);
	if (fd < 0) {
		fd = go_conn_fd(c.ssl);
		if (fd >= 0)
			remember_fd(c.ssl, fd);
	}
	emit_call(sock_of_fd(fd), c.direction, (const __u8 *)c.buffer, length);
}

SEC("uprobe")
int tls_go_write(struct pt_regs *ctx)
{
	go_enter(ctx, FATHOM_DIRECTION_EGRESS);
	return 0;
}

SEC("uprobe")
int tls_go_read(struct pt_regs *ctx)
{
	go_enter(ctx, FATHOM_DIRECTION_INGRESS);
	return 0;
}

SEC("uprobe")
int tls_go_return(struct pt_regs *ctx)
{
	go_leave(ctx);
	return 0;
}

/* The Go call in progress of the goroutine this thread runs, through the R14 of its user registers. */
static __always_inline struct tls_call *current_go_call(struct go_call_key *key)
{
	if (gauge_value(&go_in_flight) <= 0)
		return NULL;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 goroutine = 0;
	if (!regs || bpf_probe_read_kernel(&goroutine, sizeof(goroutine), &regs->r14) < 0 || !goroutine)
		return NULL;
	*key = go_key(goroutine);
	return bpf_map_lookup_elem(&go_calls, key);
}

/* A syscall inside `call` named `fd`; true when the call is done. A write's plaintext is known since the entry probe,
 * so it is emitted here and the call forgotten, before the bytes leave: SSL_write needs no return probe, and a
 * response read on another thread is never recorded before its request. Libraries with memory BIOs (Node) write the
 * ciphertext after the call, and the thread may first touch eventfds or pipes: only a socket's fd names the
 * connection. A read's first syscall names its fd; on the fd its SSL* used last, that needs no look at the socket. */
static __always_inline bool join_syscall(struct tls_call *call, __s32 fd, bool writing)
{
	if (call->direction == FATHOM_DIRECTION_EGRESS) {
		if (!writing)
			return false; /* a write that first reads (renegotiation, post-handshake messages): wait for its write */
		struct sock *sk = sock_of_fd(fd);
		if (!sk)
			return false;
		struct tls_call c = *call;
		remember_fd(c.ssl, fd);
		emit_call(sk, FATHOM_DIRECTION_EGRESS, (const __u8 *)c.buffer, c.length);
		return true;
	}
	if (call->fd_named)
		return false;
	if (call->fd != fd) {
		if (!sock_of_fd(fd))
			return false;
		call->fd = fd;
		remember_fd(call->ssl, fd);
	}
	call->fd_named = 1;
	return false;
}

/* A read/write-family syscall: inside a TLS call on this thread (OpenSSL) or goroutine (Go), it names the call's fd. */
static __always_inline void nested_syscall(__s32 fd, bool writing)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (writing && gauge_value(&awaiting_count) > 0)
		name_awaited_fd(id, fd);
	struct tls_call *call = bpf_map_lookup_elem(&calls, &id);
	struct go_call_key key;
	struct tls_call *go_call = call ? NULL : current_go_call(&key);
	if (!call && !go_call)
		return;
	if (call) {
		if (join_syscall(call, fd, writing))
			bpf_map_delete_elem(&calls, &id);
	} else if (join_syscall(go_call, fd, writing) && bpf_map_delete_elem(&go_calls, &key) == 0) {
		count_go_calls(-1);
	}
}

#define NESTED(name, writing)                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #name)                           \
	int tls_enter_##name(struct trace_event_raw_sys_enter *ctx)           \
	{                                                                     \
		nested_syscall((__s32)ctx->args[0], writing);                 \
		return 0;                                                     \
	}

NESTED(write, true)
NESTED(writev, true)
NESTED(sendto, true)
NESTED(sendmsg, true)
NESTED(read, false)
NESTED(readv, false)
NESTED(recvfrom, false)
NESTED(recvmsg, false)

SEC("tracepoint/sched/sched_process_exec")
int tls_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct fathom_exec_event *event = bpf_ringbuf_reserve(&exec_events, sizeof(*event), 0);
	if (!event)
		return 0;
	event->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(event, 0);
	return 0;
}
