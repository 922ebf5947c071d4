// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Packet capture: every packet of every local socket (cgroup_skb at the cgroup v2 root) and, optionally, every
 * packet of named interfaces (tc clsact), copied into per-CPU ring buffers as variable-size records. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "fathom_events.h"
#include "fathom_helpers.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct fathom_capture_config capture_config = {
	.snap_length = 65535,
	.wakeup_bytes = 256 * 1024,
};

/* The template of the per-CPU rings; user space creates one ring per CPU at the size it is configured for. */
struct ring_template {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* set to the number of possible CPUs before load */
	__type(key, __u32);
	__array(values, struct ring_template);
} rings SEC(".maps");

/* Records lost because the CPU's ring was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ring_losses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fathom_capture_settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} targets SEC(".maps");

/* Reserves a record of a constant size class (bpf_ringbuf_reserve takes constants only) and copies the packet in.
 * Classes keep a 60-byte ACK near 64 bytes while a 64 KiB GSO packet still fits. */
static __always_inline int emit(struct __sk_buff *skb, void *ring, struct fathom_packet_header *hdr,
				__u32 caplen, const __u32 size_class)
{
	/* 6.1's verifier learns no lower bound from `caplen != 0`, and bpf_skb_load_bytes needs a length it can prove
	 * is at least 1: bound caplen - 1 instead, kept opaque to the compiler so it does not fold the check away. */
	__u32 last = caplen - 1;
	asm volatile("" : "+r"(last));
	if (last >= size_class)
		return 0;
	struct fathom_packet_header *rec = bpf_ringbuf_reserve(ring, sizeof(*hdr) + size_class, 0);
	if (!rec) {
		count_in(&ring_losses);
		return 0;
	}
	*rec = *hdr;
	if (bpf_skb_load_bytes(skb, 0, rec + 1, last + 1) < 0) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		count_in(&ring_losses);
		return 0;
	}
	/* Waking the reader per record halves a flood sender's rate; user space drains on a timer besides. */
	__u64 flags = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= capture_config.wakeup_bytes ? BPF_RB_FORCE_WAKEUP
												  : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
	return 0;
}

/* Whether this cgroup (or one of its ancestors) is included by the targeting maps. */
static __always_inline int wanted(struct __sk_buff *skb, __u64 cgroup_id, __u32 capture_all)
{
	int included = capture_all;
	__u8 *target = bpf_map_lookup_elem(&targets, &cgroup_id);
	if (target)
		return *target == FATHOM_TARGET_INCLUDE;
	for (int level = FATHOM_MAX_CGROUP_DEPTH; level > 0; level--) {
		__u64 ancestor = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!ancestor || ancestor == cgroup_id)
			continue;
		target = bpf_map_lookup_elem(&targets, &ancestor);
		if (target)
			return *target == FATHOM_TARGET_INCLUDE;
	}
	return included;
}

static __always_inline int capture(struct __sk_buff *skb, __u8 direction, __u16 link_type)
{
	__u32 zero = 0;
	struct fathom_capture_settings *s = bpf_map_lookup_elem(&settings, &zero);
	if (!s || s->paused)
		return 0;

	__u64 cgroup_id = bpf_skb_cgroup_id(skb);
	if (s->targeted && !wanted(skb, cgroup_id, s->capture_all))
		return 0;

	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring)
		return 0;

	struct fathom_packet_header hdr = {
		.timestamp_ns = bpf_ktime_get_ns(),
		.cgroup_id = cgroup_id,
		.socket_cookie = bpf_get_socket_cookie(skb),
		.ifindex = skb->ifindex,
		.original_length = skb->len,
		.link_type = link_type,
		.kind = FATHOM_RECORD_PACKET,
		.direction = direction,
	};
	__u32 caplen = skb->len;
	if (caplen > capture_config.snap_length)
		caplen = capture_config.snap_length;
	hdr.captured_length = caplen;

#define SIZE_CLASS(n) if (caplen <= (n)) return emit(skb, ring, &hdr, caplen, (n))
	SIZE_CLASS(64); SIZE_CLASS(96); SIZE_CLASS(128); SIZE_CLASS(192); SIZE_CLASS(256); SIZE_CLASS(384);
	SIZE_CLASS(512); SIZE_CLASS(768); SIZE_CLASS(1024); SIZE_CLASS(1536); SIZE_CLASS(2048); SIZE_CLASS(3072);
	SIZE_CLASS(4096); SIZE_CLASS(8192); SIZE_CLASS(16384); SIZE_CLASS(32768); SIZE_CLASS(65535);
#undef SIZE_CLASS
	return 0;
}

SEC("cgroup_skb/ingress")
int capture_cgroup_ingress(struct __sk_buff *skb)
{
	capture(skb, FATHOM_DIRECTION_INGRESS, FATHOM_LINK_RAW_IP);
	return 1; /* cgroup_skb: 1 lets the packet through */
}

SEC("cgroup_skb/egress")
int capture_cgroup_egress(struct __sk_buff *skb)
{
	capture(skb, FATHOM_DIRECTION_EGRESS, FATHOM_LINK_RAW_IP);
	return 1;
}

SEC("tc")
int capture_tc_ingress(struct __sk_buff *skb)
{
	capture(skb, FATHOM_DIRECTION_INGRESS, FATHOM_LINK_ETHERNET);
	return 0; /* TC_ACT_OK */
}

SEC("tc")
int capture_tc_egress(struct __sk_buff *skb)
{
	capture(skb, FATHOM_DIRECTION_EGRESS, FATHOM_LINK_ETHERNET);
	return 0;
}
