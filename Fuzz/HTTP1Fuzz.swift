// Fuzzes HTTP/1.x (heads, chunked and gzip bodies, upgrades to WebSocket and h2c) on port 80. The conversation is built by Fuzz/Support/FathomDissect+Conversation.swift.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    replayConversation(data, size, serverPort: 80)
    return 0
}
