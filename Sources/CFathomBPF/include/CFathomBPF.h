#ifndef CFATHOM_BPF_H
#define CFATHOM_BPF_H
#include <linux/types.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "../../../bpf/fathom_events.h"
#endif
