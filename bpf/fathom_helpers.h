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

/* Adds `change` to entry 0 of a one-entry __s64 array shared by all CPUs: a gauge of things in flight. */
static __always_inline void adjust_gauge(void *gauge, __s64 change)
{
	__u32 zero = 0;
	__s64 *value = bpf_map_lookup_elem(gauge, &zero);
	if (value)
		__sync_fetch_and_add(value, change);
}

/* Entry 0 of such a gauge (0 if unreadable). */
static __always_inline __s64 gauge_value(void *gauge)
{
	__u32 zero = 0;
	__s64 *value = bpf_map_lookup_elem(gauge, &zero);
	return value ? *value : 0;
}

#endif
