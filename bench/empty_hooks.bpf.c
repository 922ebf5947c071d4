// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* `make bench`'s floor for the capture: programs that do nothing, attached where fathom's capture attaches
 * (cgroup_skb ingress and egress at the cgroup v2 root). What a datagram costs the sender with them is what the
 * kernel charges any cgroup_skb program before it does any work. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return 1;
}
