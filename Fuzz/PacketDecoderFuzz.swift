// Fuzzes link-layer, IPv4/IPv6 (extension headers) and TCP/UDP header decoding: first byte picks the link type.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let linkTypes = [LinkType.ethernet, LinkType.rawIP, LinkType.linuxCooked, LinkType.linuxCookedV2,
                     LinkType.loopbackBSD, LinkType.ipv4, LinkType.ipv6, 999]
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if case .success(let packet) = PacketDecoder.decode(bytes, linkType: linkTypes[Int(data[0]) % linkTypes.count]) {
        precondition(packet.payloadOffset >= 0 && packet.payloadLength >= 0)
        precondition(packet.payloadOffset + packet.payloadLength <= bytes.count, "payload outside the packet")
    }
    return 0
}
