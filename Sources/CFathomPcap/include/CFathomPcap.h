#ifndef CFATHOM_PCAP_H
#define CFATHOM_PCAP_H
#include <pcap/pcap.h>
#endif
