/* Records the BPF programs put into the per-CPU ring buffers, shared with the Swift drainer.
 * Fixed-width types only, every field naturally aligned, so both sides agree on the layout. */
#ifndef FATHOM_EVENTS_H
#define FATHOM_EVENTS_H

enum fathom_record_kind {
	FATHOM_RECORD_PACKET = 1,
};

enum fathom_direction {
	FATHOM_DIRECTION_INGRESS = 1,
	FATHOM_DIRECTION_EGRESS = 2,
};

/* pcap LINKTYPE_* values for what follows the header. */
enum fathom_link_type {
	FATHOM_LINK_ETHERNET = 1,
	FATHOM_LINK_RAW_IP = 101, /* cgroup_skb sees packets from the network header on */
};

/* A packet record: this header, then captured_length bytes of the packet. The ring record itself may be
 * longer (records are reserved in size classes), so the drainer reads captured_length, not the record size. */
struct fathom_packet_header {
	__u64 timestamp_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id;     /* cgroup v2 id of the socket's cgroup, 0 if none */
	__u64 socket_cookie; /* bpf_get_socket_cookie(): stable id of the local socket */
	__u32 ifindex;
	__u32 original_length; /* skb->len */
	__u32 captured_length;
	__u16 link_type;       /* enum fathom_link_type */
	__u8 kind;             /* enum fathom_record_kind */
	__u8 direction;        /* enum fathom_direction */
};

/* Tunables fixed at load time (a const volatile global in .rodata). */
struct fathom_capture_config {
	__u32 snap_length;  /* bytes kept per packet, at most 65535 */
	__u32 wakeup_bytes; /* wake user space only when a ring holds at least this much */
};

/* Switches user space flips while the programs run (entry 0 of the `settings` array map). */
struct fathom_capture_settings {
	__u32 paused;       /* 1: programs return at once, nothing recorded */
	__u32 capture_all;  /* 1: every cgroup except excluded ones; 0: only included ones */
	__u32 targeted;     /* 1: the `targets` map has entries; 0 spares every packet the walk up its cgroups */
	__u32 reserved;
};

/* Values of the `targets` hash map, keyed by cgroup id (a cgroup matches through itself or any ancestor). */
enum fathom_target {
	FATHOM_TARGET_INCLUDE = 1,
	FATHOM_TARGET_EXCLUDE = 2,
};

#define FATHOM_MAX_CGROUP_DEPTH 8

#endif
