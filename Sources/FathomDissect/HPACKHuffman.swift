/// Decodes HPACK Huffman strings with a binary tree built once from the code table.
enum HPACKHuffman {
    /// Tree nodes as pairs of children: a value ≥ 0 is the next node, -1 - symbol a leaf, Int16.min no child.
    private static let tree: [Int16] = {
        var nodes: [Int16] = [Int16.min, Int16.min]
        for (symbol, (code, length)) in hpackHuffmanCodes.enumerated() {
            var node = 0
            for bit in stride(from: Int(length) - 1, through: 0, by: -1) {
                let slot = node * 2 + Int((code >> UInt32(bit)) & 1)
                if bit == 0 {
                    nodes[slot] = Int16(-1 - symbol)
                } else {
                    if nodes[slot] == Int16.min {
                        nodes[slot] = Int16(nodes.count / 2)
                        nodes.append(contentsOf: [Int16.min, Int16.min])
                    }
                    node = Int(nodes[slot])
                }
            }
        }
        return nodes
    }()

    /// The decoded bytes, nil on an invalid code, an EOS symbol or padding longer than 7 bits / not all ones.
    static func decode(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 8 / 5)
        var node = 0
        var bitsSinceSymbol = 0
        var allOnes = true
        for byte in input {
            for shift in stride(from: 7, through: 0, by: -1) {
                let bit = Int(byte >> UInt8(shift)) & 1
                let next = tree[node * 2 + bit]
                bitsSinceSymbol += 1
                allOnes = allOnes && bit == 1
                if next == Int16.min { return nil }
                if next < 0 {
                    let symbol = Int(-1 - next)
                    if symbol == 256 { return nil }
                    output.append(UInt8(symbol))
                    node = 0
                    bitsSinceSymbol = 0
                    allOnes = true
                } else {
                    node = Int(next)
                }
            }
        }
        guard bitsSinceSymbol <= 7, allOnes else { return nil }
        return output
    }
}
