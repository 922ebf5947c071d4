// Fuzzes TLS records, ClientHello/ServerHello parsing and the JA3/JA4 fingerprints on port 443. The conversation is built by Fuzz/Support/FathomDissect+Conversation.swift.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    replayConversation(data, size, serverPort: 443)
    return 0
}
