"""Tiny HTTP/1.1 server for the fixtures: keep-alive, Content-Length, chunked, gzip, HEAD, 204/304/404, GraphQL."""
import gzip
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, status, body, content_type="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/hello":
            self.send_body(200, b"hello, fathom\n")
        elif path == "/big":
            self.send_body(200, b"".join(b"line %05d of a larger body\n" % i for i in range(3000)))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first chunk\n", b"second chunk\n", b"third\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            self.send_body(200, gzip.compress(b'{"compressed": true, "text": "' + b"z" * 500 + b'"}'),
                           "application/json", [("Content-Encoding", "gzip")])
        elif path == "/empty":
            self.send_response(204)
            self.end_headers()
        elif path == "/cached":
            self.send_response(304)
            self.end_headers()
        else:
            self.send_body(404, b"not found\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path.startswith("/graphql"):
            self.send_body(200, b'{"data":{"user":{"name":"ada"}}}', "application/json")
        else:
            self.send_body(201, b"created " + str(len(body)).encode() + b"\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
