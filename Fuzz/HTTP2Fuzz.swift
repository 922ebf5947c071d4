// Fuzzes HTTP/2 frames, HPACK (Huffman, dynamic table) and gRPC framing on port 8080, after the client preface. The conversation is built by Fuzz/Support/FathomDissect+Conversation.swift.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    replayConversation(data, size, serverPort: 8080, prefix: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
    return 0
}
