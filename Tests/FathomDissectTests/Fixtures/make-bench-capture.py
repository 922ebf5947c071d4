"""Writes a large HTTP/1.1 keep-alive capture for the throughput measurement (not a fixture: too big to commit).

Shape follows wrk against nginx: a minimal GET and a ~850-byte response per call, with ACKs, on parallel
connections interleaved round-robin. Usage: make-bench-capture.py OUT.pcap [CONNECTIONS] [CALLS_PER_CONNECTION]
"""
import struct
import sys

REQUEST = b"GET /index.html?id=%06d HTTP/1.1\r\nHost: 10.0.0.2:8080\r\nUser-Agent: wrk\r\n\r\n"
BODY = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>" + b"x" * 530 + b"</body></html>\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 09:00:00 GMT\r\n"
            b"Content-Type: text/html\r\nContent-Length: %d\r\nLast-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n"
            b"Connection: keep-alive\r\nETag: \"64347b5e-264\"\r\nAccept-Ranges: bytes\r\n\r\n" % len(BODY)) + BODY


def frame(src, sport, dst, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, 0x50, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def main():
    out = sys.argv[1]
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    client, server = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    t = 1_700_000_000_000_000
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

        def write(data):
            nonlocal t
            t += 7
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(data), len(data)))
            f.write(data)

        state = []
        for c in range(connections):
            port = 20000 + c
            cs, ss = 1000, 5000
            write(frame(client, port, server, 8080, cs - 1, 0, 0x02))
            write(frame(server, 8080, client, port, ss - 1, cs, 0x12))
            write(frame(client, port, server, 8080, cs, ss, 0x10))
            state.append([port, cs, ss])
        for n in range(calls):
            for c in range(connections):
                port, cs, ss = state[c]
                request = REQUEST % (n * connections + c)
                write(frame(client, port, server, 8080, cs, ss, 0x18, request))
                cs += len(request)
                write(frame(server, 8080, client, port, ss, cs, 0x10))
                write(frame(server, 8080, client, port, ss, cs, 0x18, RESPONSE))
                ss += len(RESPONSE)
                write(frame(client, port, server, 8080, cs, ss, 0x10))
                state[c] = [port, cs, ss]
        for port, cs, ss in state:
            write(frame(client, port, server, 8080, cs, ss, 0x11))
            write(frame(server, 8080, client, port, ss, cs + 1, 0x11))
            write(frame(client, port, server, 8080, cs + 1, ss + 1, 0x10))


if __name__ == "__main__":
    main()
