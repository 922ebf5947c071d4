/* A BPF ring-buffer consumer of our own. libbpf's ring_buffer__consume drains one ring after another through a
 * callback; Fathom needs the records of all CPUs' rings merged in time order (a request recorded on one CPU must come
 * before the response recorded on another), so the drainer peeks at every ring's head and picks the oldest. */
#include "CFathomBPF.h"
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct fathom_ring {
	unsigned long *consumer_pos; /* shared with the kernel, written by us */
	const unsigned long *producer_pos;
	const unsigned char *data; /* mapped twice in a row, so a record that wraps reads as one piece */
	unsigned long mask;
	unsigned long consumer; /* our position */
	unsigned long limit;    /* producer position at the last snapshot */
	size_t page;
	size_t size;
};

struct fathom_ring *fathom_ring_open(int fd, __u32 size)
{
	struct fathom_ring *ring = calloc(1, sizeof(*ring));
	if (!ring)
		return NULL;
	ring->page = (size_t)sysconf(_SC_PAGESIZE);
	ring->size = size;
	ring->mask = size - 1;
	void *consumer = mmap(NULL, ring->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (consumer == MAP_FAILED) {
		free(ring);
		return NULL;
	}
	void *producer = mmap(NULL, ring->page + 2 * (size_t)size, PROT_READ, MAP_SHARED, fd, (off_t)ring->page);
	if (producer == MAP_FAILED) {
		int saved = errno;
		munmap(consumer, ring->page);
		free(ring);
		errno = saved;
		return NULL;
	}
	ring->consumer_pos = consumer;
	ring->producer_pos = producer;
	ring->data = (const unsigned char *)producer + ring->page;
	ring->consumer = __atomic_load_n(ring->consumer_pos, __ATOMIC_ACQUIRE);
	ring->limit = ring->consumer;
	return ring;
}

void fathom_ring_close(struct fathom_ring *ring)
{
	if (!ring)
		return;
	munmap(ring->consumer_pos, ring->page);
	munmap((void *)ring->producer_pos, ring->page + 2 * ring->size);
	free(ring);
}

void fathom_ring_snapshot(struct fathom_ring *ring)
{
	ring->limit = __atomic_load_n(ring->producer_pos, __ATOMIC_ACQUIRE);
}

const void *fathom_ring_peek(struct fathom_ring *ring, __u32 *length)
{
	while (ring->consumer < ring->limit) {
		const __u32 *header = (const __u32 *)(ring->data + (ring->consumer & ring->mask));
		__u32 word = __atomic_load_n(header, __ATOMIC_ACQUIRE);
		if (word & BPF_RINGBUF_BUSY_BIT)
			return NULL; /* reserved, not yet submitted: records behind it wait for the next pass */
		__u32 len = word & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (!(word & BPF_RINGBUF_DISCARD_BIT)) {
			*length = len;
			return (const unsigned char *)header + BPF_RINGBUF_HDR_SZ;
		}
		ring->consumer += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
		__atomic_store_n(ring->consumer_pos, ring->consumer, __ATOMIC_RELEASE);
	}
	return NULL;
}

void fathom_ring_release(struct fathom_ring *ring)
{
	const __u32 *header = (const __u32 *)(ring->data + (ring->consumer & ring->mask));
	__u32 len = __atomic_load_n(header, __ATOMIC_ACQUIRE) & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
	ring->consumer += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
	__atomic_store_n(ring->consumer_pos, ring->consumer, __ATOMIC_RELEASE);
}

int fathom_rings_epoll(const int *fds, int count)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	for (int i = 0; i < count; i++) {
		struct epoll_event event = {.events = EPOLLIN, .data.u32 = (__u32)i};
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &event) < 0) {
			int saved = errno;
			close(epfd);
			return -saved;
		}
	}
	return epfd;
}

int fathom_rings_wait(int epfd, int timeout_ms)
{
	struct epoll_event events[16];
	int n = epoll_wait(epfd, events, 16, timeout_ms);
	return n < 0 ? -errno : n;
}

int fathom_thread_set_nice(int nice)
{
	/* With PRIO_PROCESS, Linux takes a thread id and sets that thread alone. */
	return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : -errno;
}
