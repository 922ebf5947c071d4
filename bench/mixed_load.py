"""Load generators the Debian packages lack, for bench/make-mixed-capture.sh. Each is bounded in count and time.
  mixed_load.py grpc-server PORT SECONDS      a gRPC server answering /bench.Echo/Call (raw bytes, no protoc)
  mixed_load.py grpc-client PORT CALLS SECONDS  unary calls on one channel; every 10th asks for NOT_FOUND
  mixed_load.py dns-client PORT QUERIES SECONDS A queries for nN.bench.test, one at a time
"""
import socket
import struct
import sys
import time
from concurrent import futures


def grpc_server(port, seconds):
    import grpc

    def call(request, context):
        if request.startswith(b"missing"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such item")
        return request * 4

    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Call": grpc.unary_unary_rpc_method_handler(call, request_deserializer=None, response_serializer=None)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination(timeout=seconds)


def grpc_client(port, calls, seconds):
    import grpc
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary("/bench.Echo/Call")
        for i in range(calls):
            if time.monotonic() > deadline:
                break
            try:
                method((b"missing-%d" if i % 10 == 0 else b"item-%d-" + b"x" * 200) % i, timeout=5)
            except grpc.RpcError:
                pass


def dns_client(port, queries, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    deadline = time.monotonic() + seconds
    for i in range(queries):
        if time.monotonic() > deadline:
            break
        name = b"".join(bytes([len(label)]) + label for label in (b"n%d" % (i % 5000), b"bench", b"test")) + b"\0"
        s.sendto(struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1),
                 ("127.0.0.1", port))
        try:
            s.recvfrom(4096)
        except socket.timeout:
            pass


if __name__ == "__main__":
    mode, port, *rest = sys.argv[1:]
    if mode == "grpc-server":
        grpc_server(int(port), float(rest[0]))
    elif mode == "grpc-client":
        grpc_client(int(port), int(rest[0]), float(rest[1]))
    elif mode == "dns-client":
        dns_client(int(port), int(rest[0]), float(rest[1]))
    else:
        sys.exit(f"unknown mode {mode}")
