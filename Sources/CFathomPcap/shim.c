#include "CFathomPcap.h"
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>

struct fathom_pcap {
	pcap_t *handle;
	fathom_pcap_handler handler;
	void *context;
};

fathom_pcap *fathom_pcap_open_live(const char *device, int snap_length, int buffer_bytes, int timeout_ms,
				   char *error, size_t error_size)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *handle = pcap_create(device, errbuf);
	if (!handle) {
		snprintf(error, error_size, "%s", errbuf);
		return NULL;
	}
	pcap_set_snaplen(handle, snap_length);
	pcap_set_buffer_size(handle, buffer_bytes);
	pcap_set_timeout(handle, timeout_ms);
	pcap_set_tstamp_precision(handle, PCAP_TSTAMP_PRECISION_NANO);
	if (pcap_activate(handle) < 0) {
		snprintf(error, error_size, "%s", pcap_geterr(handle));
		pcap_close(handle);
		return NULL;
	}
	/* Cooked v2 keeps the ifindex and packet type (outgoing or not) of every packet. */
	pcap_set_datalink(handle, DLT_LINUX_SLL2);
	fathom_pcap *capture = calloc(1, sizeof(*capture));
	if (!capture) {
		snprintf(error, error_size, "out of memory");
		pcap_close(handle);
		return NULL;
	}
	capture->handle = handle;
	return capture;
}

int fathom_pcap_link_type(fathom_pcap *capture)
{
	return pcap_datalink(capture->handle);
}

static void deliver(u_char *user, const struct pcap_pkthdr *header, const u_char *bytes)
{
	fathom_pcap *capture = (fathom_pcap *)user;
	/* Nanosecond precision was asked for: tv_usec holds nanoseconds. */
	uint64_t ts = (uint64_t)header->ts.tv_sec * 1000000000ull + (uint64_t)header->ts.tv_usec;
	capture->handler(capture->context, ts, header->caplen, header->len, bytes);
}

int fathom_pcap_dispatch(fathom_pcap *capture, fathom_pcap_handler handler, void *context)
{
	capture->handler = handler;
	capture->context = context;
	return pcap_dispatch(capture->handle, -1, deliver, (u_char *)capture);
}

void fathom_pcap_break(fathom_pcap *capture)
{
	pcap_breakloop(capture->handle);
}

uint64_t fathom_pcap_kernel_drops(fathom_pcap *capture)
{
	struct pcap_stat stats;
	return pcap_stats(capture->handle, &stats) == 0 ? stats.ps_drop : 0;
}

const char *fathom_pcap_last_error(fathom_pcap *capture)
{
	return pcap_geterr(capture->handle);
}

void fathom_pcap_close(fathom_pcap *capture)
{
	pcap_close(capture->handle);
	free(capture);
}

struct fathom_pcap_filter {
	struct bpf_program program;
};

/* pcap_open_dead takes a DLT; the files carry LINKTYPE values, which differ for raw IP. */
static int dlt_for_link_type(int link_type)
{
	switch (link_type) {
	case 101: /* LINKTYPE_RAW */
		return DLT_RAW;
	default:
		return link_type;
	}
}

fathom_pcap_filter *fathom_pcap_filter_compile(const char *expression, int link_type, char *error, size_t error_size)
{
	pcap_t *dead = pcap_open_dead_with_tstamp_precision(dlt_for_link_type(link_type), 262144,
							    PCAP_TSTAMP_PRECISION_NANO);
	if (!dead) {
		snprintf(error, error_size, "libpcap cannot open a handle for link type %d", link_type);
		return NULL;
	}
	fathom_pcap_filter *filter = calloc(1, sizeof(*filter));
	if (!filter) {
		snprintf(error, error_size, "out of memory");
		pcap_close(dead);
		return NULL;
	}
	if (pcap_compile(dead, &filter->program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(error, error_size, "%s", pcap_geterr(dead));
		free(filter);
		pcap_close(dead);
		return NULL;
	}
	pcap_close(dead);
	return filter;
}

int fathom_pcap_filter_matches(const fathom_pcap_filter *filter, const uint8_t *bytes, uint32_t captured_length,
			       uint32_t original_length)
{
	struct pcap_pkthdr header = { .caplen = captured_length, .len = original_length };
	return pcap_offline_filter(&filter->program, &header, bytes) != 0;
}

void fathom_pcap_filter_free(fathom_pcap_filter *filter)
{
	if (!filter)
		return;
	pcap_freecode(&filter->program);
	free(filter);
}
