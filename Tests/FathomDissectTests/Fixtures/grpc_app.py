"""gRPC server and client without generated code: raw-bytes generic handlers for /fathom.Echo/*."""
import sys
from concurrent import futures

import grpc

IDENTITY = (lambda b: b, lambda b: b)


def unary(request, context):
    if request == b"fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: fail")
    return b"echo:" + request


def stream(request, context):
    for i in range(3):
        yield b"part %d of %s" % (i, request)


def serve(port):
    handler = grpc.method_handlers_generic_handler("fathom.Echo", {
        "Say": grpc.unary_unary_rpc_method_handler(unary, *IDENTITY),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, *IDENTITY),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    server.wait_for_termination()


def client(port):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        say = channel.unary_unary("/fathom.Echo/Say", *IDENTITY)
        print(say(b"hello", timeout=5))
        try:
            say(b"fail", timeout=5)
        except grpc.RpcError as error:
            print(error.code())
        for part in channel.unary_stream("/fathom.Echo/Stream", *IDENTITY)(b"x", timeout=5):
            print(part)


if __name__ == "__main__":
    (serve if sys.argv[1] == "serve" else client)(int(sys.argv[2]))
