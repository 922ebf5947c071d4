import FathomModel

/// Classic pcap magic numbers as read in host order from the first four bytes.
enum PcapMagic: UInt32 {
    case microseconds = 0xA1B2_C3D4
    case nanoseconds = 0xA1B2_3C4D
    case microsecondsSwapped = 0xD4C3_B2A1
    case nanosecondsSwapped = 0x4D3C_B2A1
}

extension PacketFileReader {
    /// Reads the 24-byte file header on the first call, then one 16-byte record header and its bytes per call.
    func nextPcapPacket() throws(PacketFileError) -> PacketRecord? {
        consume(pendingSkip)
        pendingSkip = 0
        if pcapInterface == nil {
            guard try available(24) else { return endOfFile() }
            try readPcapFileHeader()
        }
        guard let interface = pcapInterface, try available(16) else { return endOfFile() }
        let captured = u32(8)
        guard captured <= maximumBlockLength - 16 else {
            throw PacketFileError(.absurdBlockLength(captured), at: cursorOffset)
        }
        let recordLength = 16 + Int(captured)
        guard try available(recordLength) else { return endOfFile() }
        let timestamp = UInt64(u32(0)) &* interface.unitsPerSecond &+ UInt64(u32(4))
        let metadata = PacketMetadata(
            timestampNanoseconds: interface.nanoseconds(timestamp), originalLength: u32(12),
            linkType: interface.linkType, source: .pcap)
        return packet(metadata, dataOffset: 16, capturedLength: Int(captured), blockLength: recordLength)
    }

    private func readPcapFileHeader() throws(PacketFileError) {
        let magic = PcapMagic(rawValue: rawU32(0))
        swapped = magic == .microsecondsSwapped || magic == .nanosecondsSwapped
        let major = u16(4)
        guard major == 2 else { throw PacketFileError(.unsupportedVersion(major: major, minor: u16(6)), at: 4) }
        // The link-type field's upper bits carry FCS information; the LINKTYPE is its low 16 bits.
        var interface = PacketInterface(linkType: UInt16(truncatingIfNeeded: u32(20)), snapLength: u32(16))
        let nanosecond = magic == .nanoseconds || magic == .nanosecondsSwapped
        _ = interface.setResolution(nanosecond ? 9 : 6)
        pcapInterface = interface
        consume(24)
    }
}
