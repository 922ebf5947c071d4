#include "CFathomBPF.h"
#include <bpf/btf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct bpf_object *fathom_bpf_open(const unsigned char *data, size_t size, const char *name)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
	struct bpf_object *obj = bpf_object__open_mem(data, size, &opts);
	if (libbpf_get_error(obj))
		return NULL;
	return obj;
}

int fathom_bpf_set_rodata(struct bpf_object *obj, const char *variable, const void *value, size_t size)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	if (!btf || !rodata)
		return -ENOENT;
	int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (sec_id < 0)
		return -ENOENT;
	const struct btf_type *sec = btf__type_by_id(btf, sec_id);
	const struct btf_var_secinfo *vs = btf_var_secinfos(sec);
	size_t data_size = 0;
	char *data = bpf_map__initial_value(rodata, &data_size);
	if (!data)
		return -ENOENT;
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), variable) != 0)
			continue;
		if (vs->size != size || vs->offset + size > data_size)
			return -EINVAL;
		memcpy(data + vs->offset, value, size);
		return 0;
	}
	return -ENOENT;
}

int fathom_bpf_create_ringbuf(const char *name, __u32 bytes)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name, 0, 0, bytes, NULL);
	return fd < 0 ? -errno : fd;
}

int fathom_bpf_tc_attach(int ifindex, int ingress, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = 0xfa7, .priority = 1);
	return bpf_tc_attach(&hook, &opts);
}

int fathom_bpf_tc_detach(int ifindex, int ingress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 0xfa7, .priority = 1);
	return bpf_tc_detach(&hook, &opts);
}

/* Verifier logs can be long; keep the tail, where the reason is. */
static char log_buffer[64 * 1024];
static size_t log_length;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int append_log(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[4096];
	int n = vsnprintf(line, sizeof(line), format, args);
	if (n <= 0)
		return 0;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	pthread_mutex_lock(&log_lock);
	if (log_length + len >= sizeof(log_buffer)) {
		size_t keep = sizeof(log_buffer) / 2;
		memmove(log_buffer, log_buffer + log_length - keep, keep);
		log_length = keep;
	}
	memcpy(log_buffer + log_length, line, len);
	log_length += len;
	pthread_mutex_unlock(&log_lock);
	return n;
}

void fathom_bpf_capture_log(void)
{
	libbpf_set_print(append_log);
}

size_t fathom_bpf_take_log(char *buffer, size_t size)
{
	if (size == 0)
		return 0;
	pthread_mutex_lock(&log_lock);
	size_t n = log_length < size - 1 ? log_length : size - 1;
	memcpy(buffer, log_buffer + log_length - n, n);
	buffer[n] = 0;
	log_length = 0;
	pthread_mutex_unlock(&log_lock);
	return n;
}

struct bpf_link *fathom_bpf_attach_uprobe(struct bpf_program *prog, const char *binary, const char *func_name,
					  size_t offset, int retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func_name, .retprobe = retprobe != 0);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, binary, offset, &opts);
	if (libbpf_get_error(link)) {
		errno = -libbpf_get_error(link);
		return NULL;
	}
	return link;
}

/* Stand-ins with the ABI of SSL_write, SSL_write_ex, SSL_read and SSL_read_ex, for `fathom selftest`: the TLS probes
 * are attached to them in fathom's own executable, so the probes, the nested-syscall join and the records are
 * exercised on any kernel without a TLS library. `ssl` points at the socket's fd; each makes one syscall, as
 * OpenSSL does, through a different member of the read/write family. */
__attribute__((noinline, used)) int fathom_selftest_ssl_write(void *ssl, const void *buffer, int length)
{
	ssize_t n = write(*(int *)ssl, buffer, (size_t)length);
	__asm__ volatile("" ::: "memory");
	return (int)n;
}

__attribute__((noinline, used)) int fathom_selftest_ssl_write_ex(void *ssl, const void *buffer, size_t length,
								size_t *written)
{
	ssize_t n = send(*(int *)ssl, buffer, length, 0);
	__asm__ volatile("" ::: "memory");
	if (n < 0)
		return 0;
	*written = (size_t)n;
	return 1;
}

__attribute__((noinline, used)) int fathom_selftest_ssl_read(void *ssl, void *buffer, int length)
{
	ssize_t n = read(*(int *)ssl, buffer, (size_t)length);
	__asm__ volatile("" ::: "memory");
	return (int)n;
}

__attribute__((noinline, used)) int fathom_selftest_ssl_read_ex(void *ssl, void *buffer, size_t length, size_t *read_bytes)
{
	ssize_t n = recv(*(int *)ssl, buffer, length, 0);
	__asm__ volatile("" ::: "memory");
	if (n <= 0)
		return 0;
	*read_bytes = (size_t)n;
	return 1;
}

/* A library with a memory BIO (Node): the plaintext is encrypted into the library's own buffer and the caller moves
 * the ciphertext later, after it may have reused its plaintext buffer. */
static unsigned char selftest_bio[4096];
static size_t selftest_bio_length;

__attribute__((noinline, used)) int fathom_selftest_ssl_write_buffered(void *ssl, const void *buffer, int length)
{
	(void)ssl;
	size_t n = length < 0 ? 0 : (size_t)length > sizeof(selftest_bio) ? sizeof(selftest_bio) : (size_t)length;
	memcpy(selftest_bio, buffer, n);
	selftest_bio_length = n;
	__asm__ volatile("" ::: "memory");
	return (int)n;
}

int fathom_selftest_flush_buffered(int fd)
{
	return (int)write(fd, selftest_bio, selftest_bio_length);
}

const void *fathom_selftest_ssl_function(const char *name)
{
	if (strcmp(name, "SSL_write") == 0)
		return (const void *)fathom_selftest_ssl_write;
	if (strcmp(name, "SSL_write_ex") == 0)
		return (const void *)fathom_selftest_ssl_write_ex;
	if (strcmp(name, "SSL_read") == 0)
		return (const void *)fathom_selftest_ssl_read;
	if (strcmp(name, "SSL_read_ex") == 0)
		return (const void *)fathom_selftest_ssl_read_ex;
	if (strcmp(name, "SSL_write buffered") == 0)
		return (const void *)fathom_selftest_ssl_write_buffered;
	return NULL;
}
