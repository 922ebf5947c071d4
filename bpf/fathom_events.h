/* Records the BPF programs put into the per-CPU ring buffers, shared with the Swift drainer.
 * Fixed-width types only, every field naturally aligned, so both sides agree on the layout. */
#ifndef FATHOM_EVENTS_H
#define FATHOM_EVENTS_H

enum fathom_record_kind {
	FATHOM_RECORD_PACKET = 1,
	FATHOM_RECORD_TLS = 2, /* struct fathom_tls_header + plaintext */
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

/* TLS plaintext (bpf/tls.bpf.c). One TLS call becomes one or more records of at most FATHOM_TLS_CHUNK bytes each;
 * stream_offset counts every byte of the call, those past the per-call cap included, so gaps are visible. */
#define FATHOM_TLS_CHUNK 16384
#define FATHOM_TLS_MAX_CHUNKS 256 /* the per-call cap is at most 4 MiB */

enum fathom_tls_flags {
	FATHOM_TLS_TRUNCATED = 1,   /* on the last chunk of a call past the cap: its remaining bytes were not copied */
	FATHOM_TLS_UNJOINED = 2,    /* no socket found for the call: addresses, ports and connection id are 0 */
	FATHOM_TLS_COPY_FAILED = 4, /* the user buffer could not be read (paged out): chunk_length bytes are missing */
};

/* `kind` and `direction` sit where struct fathom_packet_header has them, so the drainer tells records apart. */
struct fathom_tls_header {
	__u64 timestamp_ns;  /* CLOCK_MONOTONIC */
	__u64 cgroup_id;     /* bpf_get_current_cgroup_id() of the calling thread */
	__u64 socket_cookie; /* the socket's cookie if the kernel has assigned one yet, else 0 */
	__u32 pid;           /* tgid */
	__u32 tid;
	__u32 chunk_length;  /* plaintext bytes after this header */
	__u16 family;        /* AF_INET, AF_INET6, 0 when unjoined */
	__u8 kind;           /* FATHOM_RECORD_TLS */
	__u8 direction;      /* EGRESS: the process wrote it; INGRESS: the process read it */
	__u8 flags;          /* enum fathom_tls_flags */
	__u8 reserved;
	__u16 local_port;    /* host order */
	__u16 remote_port;   /* host order */
	__u16 reserved2;
	__u64 connection_id; /* the kernel's struct sock address: stable for the connection's lifetime */
	__u64 stream_offset; /* offset of this chunk in the direction's plaintext stream */
	__u64 call_length;   /* bytes the whole TLS call carried */
	__u32 local_addr[4]; /* IPv4 in [0], network order */
	__u32 remote_addr[4];
	char comm[16];
	__u32 call_offset;   /* offset of this chunk in its call */
	__u32 reserved3;
};

/* The drainer reads `kind` at the same offset in every record. */
_Static_assert(__builtin_offsetof(struct fathom_packet_header, kind) == 38, "packet kind moved");
_Static_assert(__builtin_offsetof(struct fathom_tls_header, kind) == 38, "TLS kind moved");
_Static_assert(sizeof(struct fathom_tls_header) == 128, "TLS header size changed");

/* Tunables of bpf/tls.bpf.c fixed at load time. */
struct fathom_tls_config {
	__u32 max_bytes_per_call; /* copied per TLS call, at most FATHOM_TLS_CHUNK * FATHOM_TLS_MAX_CHUNKS */
	__u32 wakeup_bytes;
};

/* A process called exec: user space looks for TLS libraries in it. */
struct fathom_exec_event {
	__u32 pid;
};

/* Process and socket-owner events (bpf/process.bpf.c), one ring shared by all CPUs: low-rate, so user space can name
 * the process behind a pid or a TCP socket after the process is gone (delayed dissection, snapshots). */
#define FATHOM_PROCESS_PATH 256

enum fathom_process_event_kind {
	FATHOM_PROCESS_EXEC = 1,    /* a process ran a new program: filename is the path it gave exec */
	FATHOM_PROCESS_EXIT = 2,    /* a process ended (its thread-group leader exited) */
	FATHOM_PROCESS_CONNECT = 3, /* a TCP connection this process opened was established */
	FATHOM_PROCESS_LISTEN = 4,  /* this process made a TCP socket listen */
};

struct fathom_process_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC */
	__u64 start_ns;     /* the process's start (task->start_time), CLOCK_MONOTONIC */
	__u64 cgroup_id;    /* cgroup v2 id of the process */
	__u32 pid;          /* tgid */
	__u32 ppid;         /* the real parent's tgid */
	__u8 kind;          /* enum fathom_process_event_kind */
	__u8 reserved;
	__u16 family;       /* CONNECT, LISTEN: AF_INET or AF_INET6 */
	__u16 local_port;   /* host order */
	__u16 remote_port;  /* host order */
	__u32 local_addr[4]; /* IPv4 in [0], network order */
	__u32 remote_addr[4];
	char comm[16];
	char filename[FATHOM_PROCESS_PATH]; /* EXEC: NUL-terminated, cut to fit; empty otherwise */
};

_Static_assert(sizeof(struct fathom_process_event) == 344, "process event size changed");

#endif
