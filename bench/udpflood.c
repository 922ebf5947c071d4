/* Bounded loopback UDP flood for `make bench`.
 *   udpflood send HOST PORT SECONDS MAX_PACKETS PAYLOAD_BYTES   prints "sent N seconds S"
 *   udpflood recv HOST PORT SECONDS                             prints "received N", binds first, prints "ready"
 * Sends with sendmmsg in batches of 64 so the sender's own syscall cost stays small next to the capture's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: udpflood send HOST PORT SECONDS MAX_PACKETS PAYLOAD | recv HOST PORT SECONDS\n");
		return 2;
	}
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	inet_pton(AF_INET, argv[2], &addr.sin_addr);
	double seconds = atof(argv[4]);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (strcmp(argv[1], "recv") == 0) {
		int size = 8 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("bind");
			return 1;
		}
		struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		printf("ready\n");
		fflush(stdout);
		static char bufs[BATCH][2048];
		struct mmsghdr msgs[BATCH];
		struct iovec iov[BATCH];
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
			msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		long received = 0;
		double end = now() + seconds;
		while (now() < end) {
			int n = recvmmsg(fd, msgs, BATCH, 0, NULL);
			if (n > 0)
				received += n;
		}
		printf("received %ld\n", received);
		return 0;
	}
	if (argc < 7)
		return 2;
	long max_packets = atol(argv[5]);
	int payload = atoi(argv[6]);
	static char data[2048];
	memset(data, 'f', sizeof(data));
	struct mmsghdr msgs[BATCH];
	struct iovec iov = {data, payload};
	for (int i = 0; i < BATCH; i++)
		msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &addr, .msg_namelen = sizeof(addr), .msg_iov = &iov, .msg_iovlen = 1}};
	long sent = 0;
	double start = now(), end = start + seconds;
	while (sent < max_packets && now() < end) {
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += n;
	}
	printf("sent %ld seconds %.3f\n", sent, now() - start);
	return 0;
}
