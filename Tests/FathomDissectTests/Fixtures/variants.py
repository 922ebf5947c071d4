"""Makes the damaged variants of a capture with scapy: reordered, lossy and mid-stream."""
import sys

from scapy.all import TCP, rdpcap, wrpcap


def data_packets(packets):
    return [i for i, p in enumerate(packets) if TCP in p and len(bytes(p[TCP].payload)) > 0]


def main(source, out_dir):
    packets = list(rdpcap(source))
    data = data_packets(packets)
    # Reordered: every pair of consecutive data segments swapped.
    reordered = list(packets)
    for a, b in zip(data[0::4], data[1::4]):
        reordered[a], reordered[b] = reordered[b], reordered[a]
    wrpcap(f"{out_dir}/http1-reordered.pcap", reordered)
    # Lossy: the 5th data segment of the larger body (an ACKed, never retransmitted loss).
    big = [i for i in data if len(bytes(packets[i][TCP].payload)) > 1000]
    lossy = [p for i, p in enumerate(packets) if i != big[len(big) // 2]]
    wrpcap(f"{out_dir}/http1-lossy.pcap", lossy)
    # Mid-stream: everything before the third request (handshakes and first exchanges) is missing.
    wrpcap(f"{out_dir}/http1-midstream.pcap", packets[data[4]:])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
