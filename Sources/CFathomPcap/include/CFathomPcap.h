/* libpcap behind an interface of Fathom's own: <pcap/pcap.h> is included by shim.c only, because its
 * `struct bpf_insn` and `struct bpf_program` clash with libbpf's once both reach one Swift module. */
#ifndef CFATHOM_PCAP_H
#define CFATHOM_PCAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct fathom_pcap fathom_pcap;

/* One packet: nanosecond wall-clock timestamp, captured and original lengths, bytes. */
typedef void (*fathom_pcap_handler)(void *context, uint64_t timestamp_ns, uint32_t captured_length,
				    uint32_t original_length, const uint8_t *bytes);

/* Opens and activates a live capture in Linux cooked v2 framing when the device offers it.
 * NULL on failure with the reason in `error`. */
fathom_pcap *fathom_pcap_open_live(const char *device, int snap_length, int buffer_bytes, int timeout_ms,
				   char *error, size_t error_size);
/* The pcap LINKTYPE of the packets it delivers. */
int fathom_pcap_link_type(fathom_pcap *capture);
/* Delivers what arrived within the timeout; the count, or -1 on error, -2 after fathom_pcap_break. */
int fathom_pcap_dispatch(fathom_pcap *capture, fathom_pcap_handler handler, void *context);
void fathom_pcap_break(fathom_pcap *capture);
/* Packets the kernel dropped because the capture buffer was full. */
uint64_t fathom_pcap_kernel_drops(fathom_pcap *capture);
const char *fathom_pcap_last_error(fathom_pcap *capture);
void fathom_pcap_close(fathom_pcap *capture);

/* A BPF filter compiled by libpcap for one link type, matched against packets in memory (no capture needed). */
typedef struct fathom_pcap_filter fathom_pcap_filter;

/* Compiles `expression` (tcpdump syntax) for packets of pcap LINKTYPE `link_type`.
 * NULL on failure with libpcap's message in `error`. */
fathom_pcap_filter *fathom_pcap_filter_compile(const char *expression, int link_type, char *error, size_t error_size);
/* Nonzero when the packet (`captured_length` bytes of an `original_length`-byte packet) matches. */
int fathom_pcap_filter_matches(const fathom_pcap_filter *filter, const uint8_t *bytes, uint32_t captured_length,
			       uint32_t original_length);
void fathom_pcap_filter_free(fathom_pcap_filter *filter);
#endif
