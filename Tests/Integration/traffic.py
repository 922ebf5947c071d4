"""Known traffic for the capture tests: every payload carries a marker the test looks for in the recording.

    traffic.py udp-server HOST PORT COUNT
    traffic.py udp-client HOST PORT MARKER COUNT
    traffic.py tcp-server HOST PORT COUNT
    traffic.py tcp-client HOST PORT MARKER COUNT
    traffic.py udp-flood HOST PORT SECONDS MAX_PACKETS
    traffic.py http-server HOST PORT SECONDS     answers /status/NNN with NNN, /checkout-like paths per STATUS_<path>

Servers print "ready" once bound, and exit after COUNT exchanges or 20 s, whichever comes first.
"""
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_server(host, port, count):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    s.settimeout(20)
    print("ready", flush=True)
    for _ in range(count):
        s.recvfrom(65536)


def udp_client(host, port, marker, count):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(f"{marker}-dgram-{i}".encode(), (host, port))
        time.sleep(0.002)  # the receiver's socket buffer is small; this is a correctness test, not a flood


def udp_echo_server(host, port, count):
    """Answers each `…-ping-N` datagram with `…-pong-N`."""
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    s.settimeout(20)
    print("ready", flush=True)
    for _ in range(count):
        data, peer = s.recvfrom(65536)
        s.sendto(data.replace(b"-ping-", b"-pong-"), peer)


def udp_ping_client(host, port, marker, count):
    """Sends `count` pings one at a time, each after the previous pong came back."""
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(count):
        s.sendto(f"{marker}-ping-{i}".encode(), (host, port))
        assert s.recvfrom(65536)[0] == f"{marker}-pong-{i}".encode()


def tcp_server(host, port, count):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    s.settimeout(20)
    print("ready", flush=True)
    for _ in range(count):
        conn, _ = s.accept()
        with conn:
            conn.settimeout(10)
            request = b""
            while not request.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            conn.sendall(b"reply-" + request)


def tcp_client(host, port, marker, count):
    for i in range(count):
        with socket.create_connection((host, port), timeout=10) as c:
            c.sendall(f"{marker}-req-{i}\n".encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = c.recv(4096)
                if not chunk:
                    break
                reply += chunk
            assert reply == f"reply-{marker}-req-{i}\n".encode(), reply


def udp_flood(host, port, seconds, max_packets):
    """Bounded in time and count: busy traffic for the crash and retention tests."""
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    payload = b"x" * 512
    deadline = time.monotonic() + seconds
    sent = 0
    while sent < max_packets and time.monotonic() < deadline:
        s.sendto(payload, (host, port))
        sent += 1
    print(sent, flush=True)


def http_server(host, port, seconds):
    """HTTP/1.1 keep-alive server: `?status=NNN` picks the status; the body echoes method and path."""
    import http.server
    import urllib.parse

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            url = urllib.parse.urlparse(self.path)
            status = int(urllib.parse.parse_qs(url.query).get("status", ["200"])[0])
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = f'{{"method":"{self.command}","path":"{url.path}"}}'.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "session=secret-cookie")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = family(host)

    server = Server((host, port), Handler)
    server.timeout = 0.2
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server.handle_request()


if __name__ == "__main__":
    mode, host, port, *rest = sys.argv[1:]
    port = int(port)
    if mode == "udp-server":
        udp_server(host, port, int(rest[0]))
    elif mode == "udp-client":
        udp_client(host, port, rest[0], int(rest[1]))
    elif mode == "udp-echo-server":
        udp_echo_server(host, port, int(rest[0]))
    elif mode == "udp-ping-client":
        udp_ping_client(host, port, rest[0], int(rest[1]))
    elif mode == "tcp-server":
        tcp_server(host, port, int(rest[0]))
    elif mode == "tcp-client":
        tcp_client(host, port, rest[0], int(rest[1]))
    elif mode == "http-server":
        http_server(host, port, float(rest[0]))
    elif mode == "udp-flood":
        udp_flood(host, port, float(rest[0]), int(rest[1]))
    else:
        sys.exit(f"unknown mode {mode}")
