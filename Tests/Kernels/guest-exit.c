/* Ends the QEMU guest with a status the host can read: writes it to the isa-debug-exit device at port 0xf4, which
 * makes QEMU exit with (status << 1) | 1. The cloud kernels have no /dev/port, hence ioperm + outl.
 * Statuses above 127 (a payload killed by a signal) are reported as 127 so they survive QEMU's 8-bit exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: guest-exit STATUS\n");
		return 2;
	}
	long status = strtol(argv[1], NULL, 10);
	if (status < 0 || status > 127)
		status = 127;
	if (ioperm(0xf4, 4, 1) != 0) {
		perror("guest-exit: ioperm(0xf4)");
		return 1;
	}
	outl((unsigned int)status, 0xf4);
	fprintf(stderr, "guest-exit: no isa-debug-exit device at 0xf4\n");
	return 1;
}
