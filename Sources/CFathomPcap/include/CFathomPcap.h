/* libpcap for the fallback capture path. Never imported beside CFathomBPF: the headers clash. */
#ifndef CFATHOM_PCAP_H
#define CFATHOM_PCAP_H
#include <pcap/pcap.h>
#endif
