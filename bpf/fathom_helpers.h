/* Helpers shared by the BPF programs (BPF side only; fathom_events.h is what user space shares). */
#ifndef FATHOM_HELPERS_H
#define FATHOM_HELPERS_H

/* Adds one to entry 0 of a one-entry per-CPU __u64 array: how every program counts what it loses. */
static __always_inline void count_in(void *per_cpu_counter)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(per_cpu_counter, &zero);
	if (count)
		*count += 1;
}

#endif
