import FathomModel
import FathomRecording

/// Feeds arbitrary bytes to `PacketFileReader` as a pcap or pcapng file: it must throw or stop, never crash,
/// hang or read outside its buffer. Touches every byte handed out so the sanitizer checks the slices.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let reader = try? PacketFileReader(bytes: bytes, maximumBlockLength: 1 << 20) else { return 0 }
    var checksum: UInt64 = 0
    var packets = 0
    while packets < 100_000, let record = try? reader.next() {
        for byte in record.bytes { checksum &+= UInt64(byte) }
        checksum &+= record.metadata.timestampNanoseconds &+ UInt64(record.metadata.originalLength)
        packets += 1
    }
    if let tail = reader.tornTail, tail.offset + tail.byteCount != UInt64(size) { fatalError("torn tail does not reach the end") }
    if reader.validLength > UInt64(size) { fatalError("valid length past the end of the input") }
    return checksum == 0x5EED ? 0 : 0
}
