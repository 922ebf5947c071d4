import FathomModel

extension PacketFileReader {
    /// Walks blocks until the next packet block, interpreting SHBs and IDBs on the way.
    func nextPcapngPacket() throws(PacketFileError) -> PacketRecord? {
        consume(pendingSkip)
        pendingSkip = 0
        while true {
            guard try available(8) else { return endOfFile() }
            let blockStart = cursorOffset
            var type = rawU32(0)
            if type == Pcapng.sectionHeaderBlock {
                guard try available(12) else { return endOfFile() }
                switch rawU32(8) {
                case Pcapng.byteOrderMagic: swapped = false
                case Pcapng.byteOrderMagic.byteSwapped: swapped = true
                default: throw PacketFileError(.badMagic(UInt32(bigEndian: rawU32(8))), at: blockStart + 8)
                }
            } else if swapped {
                type = type.byteSwapped
            }
            let length = u32(4)
            guard length >= 12, length % 4 == 0, length <= maximumBlockLength else {
                throw PacketFileError(.absurdBlockLength(length), at: blockStart)
            }
            let blockLength = Int(length)
            guard try available(blockLength) else { return endOfFile() }
            let trailing = u32(blockLength - 4)
            guard trailing == length else {
                throw PacketFileError(.blockLengthMismatch(leading: length, trailing: trailing), at: blockStart)
            }
            switch type {
            case Pcapng.sectionHeaderBlock:
                try readSectionHeader(blockLength, at: blockStart)
            case Pcapng.interfaceDescriptionBlock:
                try readInterfaceDescription(blockLength, at: blockStart)
            case Pcapng.enhancedPacketBlock:
                return try readPacketBlock(blockLength, interfaceID: u32(8), at: blockStart)
            case Pcapng.obsoletePacketBlock:
                return try readPacketBlock(blockLength, interfaceID: UInt32(u16(8)), at: blockStart)
            case Pcapng.simplePacketBlock:
                return try readSimplePacketBlock(blockLength, at: blockStart)
            default:
                break  // name resolution, statistics, decryption secrets, custom blocks…: not needed here
            }
            consume(blockLength)
        }
    }

    private func readSectionHeader(_ length: Int, at offset: UInt64) throws(PacketFileError) {
        guard length >= 28 else { throw PacketFileError(.malformedBlock("section header shorter than 28 bytes"), at: offset) }
        let major = u16(12)
        let minor = u16(14)
        guard major == 1 else { throw PacketFileError(.unsupportedVersion(major: major, minor: minor), at: offset) }
        interfaces.removeAll(keepingCapacity: true)
    }

    private func readInterfaceDescription(_ length: Int, at offset: UInt64) throws(PacketFileError) {
        guard length >= 20 else {
            throw PacketFileError(.malformedBlock("interface description shorter than 20 bytes"), at: offset)
        }
        var interface = PacketInterface(linkType: u16(8), snapLength: u32(12))
        try forEachOption(from: 16, to: length - 4, block: offset) { (code, value, valueLength) throws(PacketFileError) in
            switch code {
            case Pcapng.optionInterfaceName:
                let name = String(decoding: bytes(value, valueLength), as: UTF8.self)
                if let source = CaptureSource.allCases.first(where: { Pcapng.interfaceName(for: $0) == name }) {
                    interface.source = source
                }
            case Pcapng.optionTimestampResolution where valueLength >= 1:
                guard interface.setResolution(byte(value)) else {
                    throw PacketFileError(.malformedBlock("if_tsresol \(byte(value)) out of range"), at: offset)
                }
            case Pcapng.optionTimestampOffset where valueLength >= 8:
                interface.offsetNanoseconds = u64(value) &* PacketInterface.nanosecondsPerSecond
            default:
                break
            }
        }
        interfaces.append(interface)
    }

    /// EPB and the obsolete PB share their layout after the interface id (PB: u16 id + u16 drop count).
    private func readPacketBlock(_ length: Int, interfaceID: UInt32, at offset: UInt64)
        throws(PacketFileError) -> PacketRecord
    {
        guard length >= 32 else { throw PacketFileError(.malformedBlock("packet block shorter than 32 bytes"), at: offset) }
        guard Int(interfaceID) < interfaces.count else { throw PacketFileError(.unknownInterface(interfaceID), at: offset) }
        let interface = interfaces[Int(interfaceID)]
        let captured = u32(20)
        guard captured <= length - 32 else {
            throw PacketFileError(.malformedBlock("captured length \(captured) exceeds block length \(length)"), at: offset)
        }
        let timestamp = UInt64(u32(12)) << 32 | UInt64(u32(16))
        var metadata = PacketMetadata(
            timestampNanoseconds: interface.nanoseconds(timestamp), originalLength: u32(24),
            linkType: interface.linkType, source: interface.source)
        let optionsStart = 28 + Pcapng.padded(Int(captured))
        try forEachOption(from: optionsStart, to: length - 4, block: offset) { (code, value, valueLength) in
            switch code {
            case Pcapng.optionPacketFlags where valueLength >= 4:
                metadata.direction = Pcapng.direction(fromPacketFlags: u32(value))
            case Pcapng.optionCustomBinaryCopyable:
                decodeFathomOption(value, valueLength, into: &metadata)
            default:
                break
            }
        }
        return packet(metadata, dataOffset: 28, capturedLength: Int(captured), blockLength: length)
    }

    private func decodeFathomOption(_ value: Int, _ valueLength: Int, into metadata: inout PacketMetadata) {
        if valueLength >= 4 + FathomProcessOption.encodedLength, u32(value) == FathomPacketOption.privateEnterpriseNumber,
            byte(value + 4) == FathomProcessOption.tag
        {
            metadata.processID = u32(value + 8)
            return
        }
        guard valueLength >= 4 + FathomPacketOption.encodedLength,
              u32(value) == FathomPacketOption.privateEnterpriseNumber,
              byte(value + 4) == FathomPacketOption.version,
              let source = FathomPacketOption.source(code: byte(value + 5))
        else { return }
        metadata.source = source
        metadata.interfaceIndex = u32(value + 8)
        metadata.cgroupID = u64(value + 12)
        metadata.socketCookie = u64(value + 20)
    }

    /// SPB: interface 0, no timestamp; the captured length follows from the block and the snap length.
    private func readSimplePacketBlock(_ length: Int, at offset: UInt64) throws(PacketFileError) -> PacketRecord {
        guard length >= 16 else { throw PacketFileError(.malformedBlock("simple packet block shorter than 16 bytes"), at: offset) }
        guard let interface = interfaces.first else { throw PacketFileError(.unknownInterface(0), at: offset) }
        let original = u32(8)
        var captured = min(Int(original), length - 16)
        if interface.snapLength != 0 { captured = min(captured, Int(interface.snapLength)) }
        let metadata = PacketMetadata(
            timestampNanoseconds: 0, originalLength: original, linkType: interface.linkType, source: interface.source)
        return packet(metadata, dataOffset: 12, capturedLength: captured, blockLength: length)
    }

    /// Calls `body(code, valueOffset, valueLength)` for each option between `start` and `end` (offsets in the block).
    private func forEachOption(
        from start: Int, to end: Int, block offset: UInt64,
        _ body: (UInt16, Int, Int) throws(PacketFileError) -> Void
    ) throws(PacketFileError) {
        var position = start
        while position + 4 <= end {
            let code = u16(position)
            let valueLength = Int(u16(position + 2))
            if code == Pcapng.optionEndOfOptions { return }
            let value = position + 4
            guard value + valueLength <= end else {
                throw PacketFileError(.malformedBlock("option \(code) runs past the end of its block"), at: offset)
            }
            try body(code, value, valueLength)
            position = value + Pcapng.padded(valueLength)
        }
    }
}
