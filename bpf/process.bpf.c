// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Process events for attribution: exec and exit of processes, and which process opened or listens on each TCP
 * socket. User space keeps their history so a call is named by the process that made it even when that process has
 * exited by the time the call is dissected, or the call is dissected later from a snapshot.
 * Only stable tracepoints: sched_process_exec, sched_process_exit and sock/inet_sock_set_state. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "fathom_events.h"
#include "fathom_helpers.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
/* include/net/tcp_states.h */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define TCP_LISTEN 10

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} process_events SEC(".maps");

/* Events lost because the ring was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} process_losses SEC(".maps");

/* The process that called connect() on a socket, kept from SYN_SENT (process context, but no local port yet) to
 * ESTABLISHED (softirq: another task is current, but the ports are known). Keyed by the socket's address. */
struct connector {
	__u64 cgroup_id;
	__u64 start_ns;
	__u32 pid;
	__u32 ppid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connector);
} connecting SEC(".maps");

/* A zeroed event stamped with the current process, or NULL when the ring is full (counted). */
static __always_inline struct fathom_process_event *new_event(__u8 kind)
{
	struct fathom_process_event *event = bpf_ringbuf_reserve(&process_events, sizeof(*event), 0);
	if (!event) {
		count_in(&process_losses);
		return NULL;
	}
	__builtin_memset(event, 0, sizeof(*event));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	event->timestamp_ns = bpf_ktime_get_ns();
	event->start_ns = BPF_CORE_READ(task, start_time);
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->pid = bpf_get_current_pid_tgid() >> 32;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->kind = kind;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	return event;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct fathom_process_event *event = new_event(FATHOM_PROCESS_EXEC);
	if (!event)
		return 0;
	__u32 location = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), (void *)ctx + location);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid != pid_tgid >> 32)
		return 0; /* a thread, not the process */
	struct fathom_process_event *event = new_event(FATHOM_PROCESS_EXIT);
	if (event)
		bpf_ringbuf_submit(event, 0);
	return 0;
}

static __always_inline void copy_addresses(struct fathom_process_event *event,
					   struct trace_event_raw_inet_sock_set_state *ctx)
{
	event->family = ctx->family;
	event->local_port = ctx->sport;
	event->remote_port = ctx->dport;
	/* Read, not copied: the verifier refuses loads through a pointer derived from the context. */
	if (ctx->family == AF_INET) {
		bpf_probe_read_kernel(event->local_addr, 4, ctx->saddr);
		bpf_probe_read_kernel(event->remote_addr, 4, ctx->daddr);
	} else {
		bpf_probe_read_kernel(event->local_addr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(event->remote_addr, 16, ctx->daddr_v6);
	}
}

SEC("tracepoint/sock/inet_sock_set_state")
int process_socket_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || (ctx->family != AF_INET && ctx->family != AF_INET6))
		return 0;
	__u64 socket = (__u64)ctx->skaddr;
	if (ctx->newstate == TCP_SYN_SENT) {
		/* connect(): the caller is current. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct connector owner = {
			.cgroup_id = bpf_get_current_cgroup_id(),
			.start_ns = BPF_CORE_READ(task, start_time),
			.pid = bpf_get_current_pid_tgid() >> 32,
			.ppid = BPF_CORE_READ(task, real_parent, tgid),
		};
		bpf_get_current_comm(owner.comm, sizeof(owner.comm));
		bpf_map_update_elem(&connecting, &socket, &owner, BPF_ANY);
		return 0;
	}
	if (ctx->oldstate == TCP_SYN_SENT) {
		struct connector *owner = bpf_map_lookup_elem(&connecting, &socket);
		if (!owner)
			return 0;
		if (ctx->newstate == TCP_ESTABLISHED) {
			struct fathom_process_event *event =
				bpf_ringbuf_reserve(&process_events, sizeof(*event), 0);
			if (event) {
				__builtin_memset(event, 0, sizeof(*event));
				event->timestamp_ns = bpf_ktime_get_ns();
				event->start_ns = owner->start_ns;
				event->cgroup_id = owner->cgroup_id;
				event->pid = owner->pid;
				event->ppid = owner->ppid;
				event->kind = FATHOM_PROCESS_CONNECT;
				__builtin_memcpy(event->comm, owner->comm, sizeof(event->comm));
				copy_addresses(event, ctx);
				bpf_ringbuf_submit(event, 0);
			} else {
				count_in(&process_losses);
			}
		}
		bpf_map_delete_elem(&connecting, &socket);
		return 0;
	}
	if (ctx->newstate == TCP_LISTEN && ctx->sport != 0) {
		/* listen(): the caller is current. */
		struct fathom_process_event *event = new_event(FATHOM_PROCESS_LISTEN);
		if (!event)
			return 0;
		copy_addresses(event, ctx);
		bpf_ringbuf_submit(event, 0);
	}
	return 0;
}
