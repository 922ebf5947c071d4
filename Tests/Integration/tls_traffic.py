"""TLS peers for test_tls.py: an HTTPS server (Python ssl, keep-alive) and a keep-alive HTTPS client.

server CERT KEY PORT            serves until killed; prints "ready" once listening. Every response echoes
                                the request: "<METHOD> <PATH> secret=<X-Secret> len=<body length> sum=<byte sum>".
client PORT SECRET PATH BODY_BYTES COUNT
                                COUNT requests on one connection: GET PATH?i=N, then one POST PATH with a body of
                                BODY_BYTES bytes (b"0123456789" repeated) when BODY_BYTES > 0; prints each response.
"""
import http.client
import http.server
import ssl
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        text = f"{self.command} {self.path} secret={self.headers.get('X-Secret')} len={len(body)} sum={sum(body)}"
        out = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


def body(size):
    return (b"0123456789" * (size // 10 + 1))[:size]


def main():
    if sys.argv[1] == "server":
        cert, key, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print("ready", flush=True)
        server.serve_forever()
    elif sys.argv[1] == "client":
        port, secret, path, size, count = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        # "pause": after the first request, the connection stays open until a line arrives on stdin.
        pause = sys.argv[7:] == ["pause"]
        context = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        for i in range(count):
            connection.request("GET", f"{path}?i={i}", headers={"X-Secret": secret})
            print(connection.getresponse().read().decode(), flush=True)
            if pause and i == 0:
                sys.stdin.readline()
        if size:
            connection.request("POST", path, body=body(size), headers={"X-Secret": secret})
            print(connection.getresponse().read().decode(), flush=True)
        connection.close()


if __name__ == "__main__":
    main()
