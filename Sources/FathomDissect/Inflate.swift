/// DEFLATE decompression (RFC 1951, with the gzip and zlib wrappers) for body previews. Bounded: it stops at `limit`
/// output bytes and returns what it produced when the input is cut short or corrupt.
enum Inflate {
    /// What came out.
    struct Output {
        var bytes: [UInt8]
        /// The stream reached its final block's end.
        var complete: Bool
        /// Output stopped at the limit.
        var cut: Bool
    }

    private enum Stop: Error {
        case endOfInput
        case corrupt
        case limit
    }

    /// Decompresses a gzip member; nil when the header is not gzip.
    static func gunzip(_ input: UnsafeRawBufferPointer, limit: Int) -> Output? {
        guard input.u8(0) == 0x1f, input.u8(1) == 0x8b, input.u8(2) == 8, let flags = input.u8(3) else { return nil }
        var offset = 10
        if flags & 4 != 0 {
            guard let extra = input.u8(offset).flatMap({ lo in input.u8(offset + 1).map { Int($0) << 8 | Int(lo) } })
            else { return nil }
            offset += 2 + extra
        }
        for flag in [UInt8(8), 16] where flags & flag != 0 {
            while let byte = input.u8(offset), byte != 0 { offset += 1 }
            offset += 1
        }
        if flags & 2 != 0 { offset += 2 }
        guard offset <= input.count else { return nil }
        return raw(input.suffix(from: offset), limit: limit)
    }

    /// Decompresses HTTP "deflate": zlib-wrapped as the RFC says, or raw as some servers send it.
    static func zlibOrRaw(_ input: UnsafeRawBufferPointer, limit: Int) -> Output {
        if let cmf = input.u8(0), let flg = input.u8(1), cmf & 0x0f == 8, (Int(cmf) << 8 | Int(flg)) % 31 == 0,
            flg & 0x20 == 0
        {
            return raw(input.suffix(from: 2), limit: limit)
        }
        return raw(input, limit: limit)
    }

    /// Decompresses raw DEFLATE data.
    static func raw(_ input: UnsafeRawBufferPointer, limit: Int) -> Output {
        var state = State(input: input, limit: limit)
        do {
            var last = false
            while !last {
                last = try state.bits(1) == 1
                switch try state.bits(2) {
                case 0: try state.stored()
                case 1: try state.codes(State.fixedLengths, State.fixedDistances)
                case 2: try state.dynamic()
                default: throw Stop.corrupt
                }
            }
            return Output(bytes: state.output, complete: true, cut: false)
        } catch Stop.limit {
            return Output(bytes: state.output, complete: false, cut: true)
        } catch {
            return Output(bytes: state.output, complete: false, cut: false)
        }
    }

    /// Canonical Huffman code as counts per length and symbols in code order (zlib's puff).
    private struct Huffman {
        var count = [Int](repeating: 0, count: 16)
        var symbol: [Int]

        init?(lengths: [Int]) {
            symbol = [Int](repeating: 0, count: lengths.count)
            for length in lengths { count[length] += 1 }
            var left = 1
            for length in 1..<16 {
                left <<= 1
                left -= count[length]
                if left < 0 { return nil }  // over-subscribed
            }
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + count[length] }
            for (value, length) in lengths.enumerated() where length != 0 {
                symbol[offsets[length]] = value
                offsets[length] += 1
            }
        }
    }

    private struct State {
        let input: UnsafeRawBufferPointer
        let limit: Int
        var position = 0
        var bitBuffer = 0
        var bitCount = 0
        var output: [UInt8] = []

        static let fixedLengths: Huffman = {
            var lengths = [Int](repeating: 8, count: 288)
            for i in 144..<256 { lengths[i] = 9 }
            for i in 256..<280 { lengths[i] = 7 }
            return Huffman(lengths: lengths)!
        }()
        static let fixedDistances = Huffman(lengths: [Int](repeating: 5, count: 30))!
        static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
        static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
        static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

        init(input: UnsafeRawBufferPointer, limit: Int) {
            self.input = input
            self.limit = limit
            output.reserveCapacity(min(limit, 64 * 1024))
        }

        mutating func bits(_ need: Int) throws -> Int {
            var value = bitBuffer
            while bitCount < need {
                guard position < input.count else { throw Stop.endOfInput }
                value |= Int(input[position]) << bitCount
                position += 1
                bitCount += 8
            }
            bitBuffer = value >> need
            bitCount -= need
            return value & ((1 << need) - 1)
        }

        mutating func append(_ byte: UInt8) throws {
            guard output.count < limit else { throw Stop.limit }
            output.append(byte)
        }

        mutating func stored() throws {
            bitBuffer = 0
            bitCount = 0
            guard let length = input.u8(position).flatMap({ lo in input.u8(position + 1).map { Int($0) << 8 | Int(lo) } }),
                let check = input.u8(position + 2).flatMap({ lo in input.u8(position + 3).map { Int($0) << 8 | Int(lo) } })
            else { throw Stop.endOfInput }
            guard length == ~check & 0xffff else { throw Stop.corrupt }
            position += 4
            for _ in 0..<length {
                guard position < input.count else { throw Stop.endOfInput }
                try append(input[position])
                position += 1
            }
        }

        mutating func decode(_ code: Huffman) throws -> Int {
            var value = 0
            var first = 0
            var index = 0
            for length in 1..<16 {
                value |= try bits(1)
                let count = code.count[length]
                if value - count < first { return code.symbol[index + (value - first)] }
                index += count
                first += count
                first <<= 1
                value <<= 1
            }
            throw Stop.corrupt
        }

        mutating func codes(_ lengthCode: Huffman, _ distanceCode: Huffman) throws {
            while true {
                let symbol = try decode(lengthCode)
                if symbol < 256 {
                    try append(UInt8(symbol))
                } else if symbol == 256 {
                    return
                } else {
                    let index = symbol - 257
                    guard index < 29 else { throw Stop.corrupt }
                    let length = State.lengthBase[index] + (try bits(State.lengthExtra[index]))
                    let distanceSymbol = try decode(distanceCode)
                    guard distanceSymbol < 30 else { throw Stop.corrupt }
                    let distance = State.distanceBase[distanceSymbol] + (try bits(State.distanceExtra[distanceSymbol]))
                    guard distance <= output.count else { throw Stop.corrupt }
                    for _ in 0..<length { try append(output[output.count - distance]) }
                }
            }
        }

        mutating func dynamic() throws {
            let literalCount = try bits(5) + 257
            let distanceCount = try bits(5) + 1
            let codeLengthCount = try bits(4) + 4
            guard literalCount <= 286, distanceCount <= 30 else { throw Stop.corrupt }
            var codeLengths = [Int](repeating: 0, count: 19)
            for i in 0..<codeLengthCount { codeLengths[State.codeLengthOrder[i]] = try bits(3) }
            guard let codeLengthCode = Huffman(lengths: codeLengths) else { throw Stop.corrupt }
            var lengths: [Int] = []
            lengths.reserveCapacity(literalCount + distanceCount)
            while lengths.count < literalCount + distanceCount {
                let symbol = try decode(codeLengthCode)
                if symbol < 16 {
                    lengths.append(symbol)
                    continue
                }
                var repeated = 0
                var times: Int
                switch symbol {
                case 16:
                    guard let previous = lengths.last else { throw Stop.corrupt }
                    repeated = previous
                    times = 3 + (try bits(2))
                case 17: times = 3 + (try bits(3))
                default: times = 11 + (try bits(7))
                }
                guard lengths.count + times <= literalCount + distanceCount else { throw Stop.corrupt }
                lengths.append(contentsOf: repeatElement(repeated, count: times))
            }
            guard lengths[256] != 0, let lengthCode = Huffman(lengths: Array(lengths[0..<literalCount])),
                let distanceCode = Huffman(lengths: Array(lengths[literalCount...]))
            else { throw Stop.corrupt }
            try codes(lengthCode, distanceCode)
        }
    }
}
