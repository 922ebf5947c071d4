/* Stand-in for `fathom selftest`, only for developing the kernel-matrix harness (run-matrix.sh); to be replaced by
 * `fathom selftest` once that exists.
 *
 * For each program of bpf/capture.bpf.c (embedded at build time): load it on its own with the verifier's statistics
 * log, create one ring buffer per CPU and put them in the `rings` array-of-maps, attach it (cgroup_skb at the cgroup v2
 * root, tc clsact on lo), send a UDP datagram over loopback and check that the program's record of it arrives with the
 * right content. Prints one line per program in the selftest format:
 *   PROGRAM: PASS (xlated N insns, jited N bytes, verifier processed N insns)
 *   PROGRAM: FAIL: verifier says …   (followed by the tail of the full verifier log)
 *   PROGRAM: FAIL: …
 * and exits 1 if any program failed. Built by build-standin.sh, linked -static so the guest needs nothing else. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fathom_events.h"

static const unsigned char capture_object[] = {
#embed "capture.bpf.o"
};

enum { RING_BYTES = 1 << 20, STATS_LOG_BYTES = 64 << 10, FULL_LOG_BYTES = 64 << 20, LOG_TAIL_LINES = 40 };
enum { BPF_LOG_LEVEL1 = 1, BPF_LOG_STATS = 4 };

/* What one program's test found. */
struct outcome {
	char line[1024]; /* the text after "PROGRAM: " */
	bool passed;
	char *verifier_log; /* on a load failure: the full verifier log, printed after the line */
};

static void set_outcome(struct outcome *out, bool passed, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->line, sizeof(out->line), fmt, ap);
	va_end(ap);
	out->passed = passed;
}

/* Set while loading: a failed load is reported by our own FAIL line and verifier log, not libbpf's echo of it. */
static bool loading;

/* libbpf's own warnings (attach errors and the like) go to stderr; its debug chatter is dropped. */
static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || loading)
		return 0;
	fputs("  ", stderr);
	return vfprintf(stderr, fmt, ap);
}

static int load(struct bpf_object *obj)
{
	loading = true;
	int err = bpf_object__load(obj);
	loading = false;
	return err;
}

/* Opens a fresh copy of the object with only `name` to be loaded, its verifier log going to `log`. */
static struct bpf_object *open_for(const char *name, __u32 log_level, char *log, size_t log_size)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "capture");
	struct bpf_object *obj = bpf_object__open_mem(capture_object, sizeof(capture_object), &opts);
	if (!obj)
		return NULL;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj) {
		bool wanted = strcmp(bpf_program__name(prog), name) == 0;
		bpf_program__set_autoload(prog, wanted);
		if (wanted) {
			bpf_program__set_log_level(prog, log_level);
			bpf_program__set_log_buf(prog, log, log_size);
		}
	}
	struct bpf_map *rings = bpf_object__find_map_by_name(obj, "rings");
	int cpus = libbpf_num_possible_cpus();
	if (!rings || cpus <= 0 || bpf_map__set_max_entries(rings, (__u32)cpus) != 0) {
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

/* The verifier's own words: the last non-empty line of the log that is not a statistics line. */
static void verifier_reason(const char *log, char *reason, size_t size)
{
	snprintf(reason, size, "(empty log)");
	const char *line = log;
	while (*line) {
		const char *end = strchrnul(line, '\n');
		size_t len = (size_t)(end - line);
		if (len > 0 && strncmp(line, "processed ", 10) != 0 && strncmp(line, "verification time", 17) != 0 &&
		    strncmp(line, "stack depth", 11) != 0)
			snprintf(reason, size, "%.*s", (int)len, line);
		line = *end ? end + 1 : end;
	}
}

static void print_log_tail(const char *log, int lines)
{
	const char *start = log + strlen(log);
	while (start > log && lines >= 0) {
		start--;
		if (*start == '\n')
			lines--;
	}
	printf("  --- verifier log (last %d lines) ---\n%s  --- end of verifier log ---\n", LOG_TAIL_LINES, start);
}

/* A failed load: says why in one line, then reloads with the full instruction-level log and prints its tail. */
static void explain_load_failure(const char *name, int err, const char *stats_log, struct outcome *out)
{
	char reason[512];
	verifier_reason(stats_log, reason, sizeof(reason));
	set_outcome(out, false, "FAIL: verifier says %s (%s)", reason, strerror(-err));
	out->verifier_log = calloc(1, FULL_LOG_BYTES);
	if (!out->verifier_log)
		return;
	struct bpf_object *obj = open_for(name, BPF_LOG_LEVEL1 | BPF_LOG_STATS, out->verifier_log, FULL_LOG_BYTES);
	if (obj) {
		load(obj);
		bpf_object__close(obj);
	}
}

static int cgroup2_root(char *path, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -errno;
	char line[4096];
	int err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char mount_point[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mount_point) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
			continue;
		snprintf(path, size, "%s", mount_point);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

/* The record a program should leave for the test datagram. */
struct expectation {
	const char *payload;
	size_t payload_len;
	__u8 direction;
	__u16 link_type;
	__u64 socket_cookie; /* 0: not checked (tc on lo sees no socket on ingress) */
	int seen;
	char mismatch[256];
};

static int check_record(void *ctx, void *data, size_t size)
{
	struct expectation *want = ctx;
	const struct fathom_packet_header *hdr = data;
	if (size < sizeof(*hdr) || hdr->kind != FATHOM_RECORD_PACKET || hdr->captured_length > size - sizeof(*hdr))
		return 0;
	const unsigned char *packet = (const unsigned char *)(hdr + 1);
	if (!memmem(packet, hdr->captured_length, want->payload, want->payload_len))
		return 0; /* somebody else's packet */
	if (hdr->direction != want->direction || hdr->link_type != want->link_type)
		snprintf(want->mismatch, sizeof(want->mismatch), "record has direction %u link type %u, want %u and %u",
			 hdr->direction, hdr->link_type, want->direction, want->link_type);
	else if (hdr->captured_length != hdr->original_length)
		snprintf(want->mismatch, sizeof(want->mismatch), "captured %u of %u bytes", hdr->captured_length,
			 hdr->original_length);
	else if (want->socket_cookie && hdr->socket_cookie != want->socket_cookie)
		snprintf(want->mismatch, sizeof(want->mismatch), "socket cookie %llu, want %llu",
			 (unsigned long long)hdr->socket_cookie, (unsigned long long)want->socket_cookie);
	else if (hdr->timestamp_ns == 0)
		snprintf(want->mismatch, sizeof(want->mismatch), "timestamp is 0");
	else
		want->seen++;
	return 0;
}

static __u64 socket_cookie(int fd)
{
	__u64 cookie = 0;
	socklen_t len = sizeof(cookie);
	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
	return cookie;
}

/* Sends one datagram from one loopback UDP socket to another and receives it; fills in the sockets' cookies. */
static int send_datagram(const char *payload, __u64 *sender_cookie, __u64 *receiver_cookie)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t addr_len = sizeof(addr);
	int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;
	struct timeval two_seconds = {.tv_sec = 2};
	if (receiver < 0 || sender < 0 || bind(receiver, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(receiver, (struct sockaddr *)&addr, &addr_len) != 0 ||
	    setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof(two_seconds)) != 0 ||
	    sendto(sender, payload, strlen(payload), 0, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
	} else {
		char buf[256];
		if (recv(receiver, buf, sizeof(buf), 0) < 0)
			err = -errno;
		*sender_cookie = socket_cookie(sender);
		*receiver_cookie = socket_cookie(receiver);
	}
	if (receiver >= 0)
		close(receiver);
	if (sender >= 0)
		close(sender);
	return err;
}

/* Creates one ring per CPU, puts it in `rings` and registers it with a ring_buffer reader. */
static struct ring_buffer *make_rings(struct bpf_object *obj, struct expectation *want, int *ring_fds, int cpus)
{
	int outer = bpf_map__fd(bpf_object__find_map_by_name(obj, "rings"));
	struct ring_buffer *reader = NULL;
	for (int cpu = 0; cpu < cpus; cpu++) {
		ring_fds[cpu] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "fathom_ring", 0, 0, RING_BYTES, NULL);
		__u32 key = (__u32)cpu;
		if (ring_fds[cpu] < 0 || bpf_map_update_elem(outer, &key, &ring_fds[cpu], BPF_ANY) != 0)
			goto fail;
		if (!reader)
			reader = ring_buffer__new(ring_fds[cpu], check_record, want, NULL);
		else if (ring_buffer__add(reader, ring_fds[cpu], check_record, want) != 0)
			goto fail;
		if (!reader)
			goto fail;
	}
	return reader;
fail:
	ring_buffer__free(reader);
	return NULL;
}

struct attachment {
	struct bpf_link *link;    /* cgroup_skb */
	struct bpf_tc_hook hook;  /* tc */
	struct bpf_tc_opts tc;
	bool hook_created;
	bool tc_attached;
};

static int attach(struct bpf_program *prog, const char *cgroup_root, struct attachment *at)
{
	const char *name = bpf_program__name(prog);
	if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SKB) {
		int cg = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg < 0)
			return -errno;
		at->link = bpf_program__attach_cgroup(prog, cg);
		int err = at->link ? 0 : -errno;
		close(cg);
		return err;
	}
	at->hook = (struct bpf_tc_hook){.sz = sizeof(at->hook), .ifindex = (int)if_nametoindex("lo")};
	at->hook.attach_point = strstr(name, "ingress") ? BPF_TC_INGRESS : BPF_TC_EGRESS;
	int err = bpf_tc_hook_create(&at->hook);
	if (err && err != -EEXIST)
		return err;
	at->hook_created = err == 0;
	at->tc = (struct bpf_tc_opts){.sz = sizeof(at->tc), .prog_fd = bpf_program__fd(prog), .handle = 0xfa7, .priority = 1};
	err = bpf_tc_attach(&at->hook, &at->tc);
	at->tc_attached = err == 0;
	return err;
}

/* Undoes attach(); the clsact qdisc goes only if this program created it. */
static void detach(struct attachment *at)
{
	bpf_link__destroy(at->link);
	if (at->tc_attached) {
		at->tc.prog_fd = 0;
		at->tc.flags = 0;
		at->tc.prog_id = 0;
		bpf_tc_detach(&at->hook, &at->tc);
	}
	if (at->hook_created) {
		at->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&at->hook);
	}
}

static unsigned long long verifier_processed(const char *log)
{
	const char *p = strstr(log, "processed ");
	return p ? strtoull(p + 10, NULL, 10) : 0;
}

static void test_program(const char *name, const char *cgroup_root, struct outcome *out)
{
	static char stats_log[STATS_LOG_BYTES];
	stats_log[0] = '\0';
	struct bpf_object *obj = open_for(name, BPF_LOG_STATS, stats_log, sizeof(stats_log));
	if (!obj) {
		set_outcome(out, false, "FAIL: cannot open the embedded object: %s", strerror(errno));
		return;
	}
	int err = load(obj);
	if (err) {
		bpf_object__close(obj);
		explain_load_failure(name, err, stats_log, out);
		return;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);
	struct bpf_prog_info info = {0};
	__u32 info_len = sizeof(info);
	bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &info_len);
	char figures[160];
	snprintf(figures, sizeof(figures), "xlated %u insns, jited %u bytes, verifier processed %llu insns",
		 info.xlated_prog_len / 8, info.jited_prog_len, verifier_processed(stats_log));

	int cpus = libbpf_num_possible_cpus();
	int ring_fds[cpus];
	memset(ring_fds, -1, sizeof(ring_fds));
	struct expectation want = {0};
	struct attachment at = {0};
	char payload[96];
	snprintf(payload, sizeof(payload), "fathom-standin %d %s", getpid(), name);
	want.payload = payload;
	want.payload_len = strlen(payload);
	bool is_cgroup = bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SKB;
	want.direction = strstr(name, "ingress") ? FATHOM_DIRECTION_INGRESS : FATHOM_DIRECTION_EGRESS;
	want.link_type = is_cgroup ? FATHOM_LINK_RAW_IP : FATHOM_LINK_ETHERNET;

	struct fathom_capture_settings settings = {.paused = 0, .capture_all = 1};
	__u32 zero = 0;
	struct ring_buffer *reader = make_rings(obj, &want, ring_fds, cpus);
	if (!reader) {
		set_outcome(out, false, "FAIL: cannot create the per-CPU rings: %s (%s)", strerror(errno), figures);
	} else if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "settings")), &zero, &settings,
				       BPF_ANY) != 0) {
		set_outcome(out, false, "FAIL: cannot write the settings map: %s (%s)", strerror(errno), figures);
	} else if ((err = attach(prog, cgroup_root, &at)) != 0) {
		set_outcome(out, false, "FAIL: cannot attach: %s (%s)", strerror(-err), figures);
	} else {
		__u64 sender_cookie = 0, receiver_cookie = 0;
		err = send_datagram(payload, &sender_cookie, &receiver_cookie);
		if (is_cgroup)
			want.socket_cookie = want.direction == FATHOM_DIRECTION_EGRESS ? sender_cookie : receiver_cookie;
		ring_buffer__consume(reader);
		if (err)
			set_outcome(out, false, "FAIL: loopback datagram not delivered: %s (%s)", strerror(-err), figures);
		else if (want.seen == 1)
			set_outcome(out, true, "PASS (%s)", figures);
		else if (want.mismatch[0])
			set_outcome(out, false, "FAIL: %s (%s)", want.mismatch, figures);
		else
			set_outcome(out, false, "FAIL: %d records of the test datagram in the rings, want 1 (%s)", want.seen,
				    figures);
	}
	detach(&at);
	ring_buffer__free(reader);
	for (int cpu = 0; cpu < cpus; cpu++)
		if (ring_fds[cpu] >= 0)
			close(ring_fds[cpu]);
	bpf_object__close(obj);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);
	char cgroup_root[PATH_MAX];
	if (cgroup2_root(cgroup_root, sizeof(cgroup_root)) != 0) {
		printf("bpfload: FAIL: no cgroup v2 mount in /proc/self/mountinfo\n");
		return 1;
	}
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "capture");
	struct bpf_object *listing = bpf_object__open_mem(capture_object, sizeof(capture_object), &opts);
	if (!listing) {
		printf("bpfload: FAIL: cannot open the embedded object: %s\n", strerror(errno));
		return 1;
	}
	int failures = 0;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, listing) {
		const char *name = bpf_program__name(prog);
		struct outcome out = {0};
		test_program(name, cgroup_root, &out);
		printf("%s: %s\n", name, out.line);
		if (out.verifier_log) {
			print_log_tail(out.verifier_log, LOG_TAIL_LINES);
			free(out.verifier_log);
		}
		failures += !out.passed;
	}
	bpf_object__close(listing);
	return failures ? 1 : 0;
}
