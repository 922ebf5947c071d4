import Foundation

/// Latencies counted in logarithmic buckets, so per-minute rollups can be merged and still give p50/p90/p99: every
/// latency of at least `minimumMs` is reported within `relativeError` of its true value (the bucket's midpoint in
/// ratio), smaller ones as 0, and ones above `maximumMs` as about `maximumMs`.
///
/// Bucket `i` holds the latencies in (γ^(i-1), γ^i] with γ = (1+α)/(1-α); its value 2γ^i/(γ+1) is within α of every
/// latency in it (the DDSketch mapping). Counts are kept densely over the range of buckets seen.
public struct LatencyHistogram: Sendable, Equatable {
    /// The bound on |reported − true| / true for a percentile of latencies in [`minimumMs`, `maximumMs`].
    public static let relativeError = 0.01
    /// Latencies below this (1 µs) count as 0.
    public static let minimumMs = 0.001
    /// Latencies above this (about 28 hours) count as this.
    public static let maximumMs = 1e8

    private static let gamma = (1 + relativeError) / (1 - relativeError)
    private static let logGamma = log(gamma)
    private static let minimumIndex = Int((log(minimumMs) / logGamma).rounded(.up))
    private static let maximumIndex = Int((log(maximumMs) / logGamma).rounded(.up))
    /// Slot 0 holds the zero bucket; slot s > 0 the bucket of index s - 1 + minimumIndex.
    static let slotCount = maximumIndex - minimumIndex + 2

    /// Counts of slots `base ..< base + counts.count`.
    private var base = 0
    private var counts: [Int] = []
    /// Latencies counted.
    public private(set) var total = 0

    public init() {}

    /// The slot a latency is counted in.
    static func slot(_ latencyMs: Double) -> Int {
        // NaN and negatives fail this test too.
        guard latencyMs >= minimumMs else { return 0 }
        let index = Int((log(min(latencyMs, maximumMs)) / logGamma).rounded(.up))
        return min(max(index, minimumIndex), maximumIndex) - minimumIndex + 1
    }

    /// The latency a slot reports.
    static func value(ofSlot slot: Int) -> Double {
        guard slot > 0 else { return 0 }
        return 2 * pow(gamma, Double(slot - 1 + minimumIndex)) / (gamma + 1)
    }

    public mutating func add(_ latencyMs: Double) { add(slot: Self.slot(latencyMs), count: 1) }

    mutating func add(slot: Int, count: Int) {
        if counts.isEmpty {
            base = slot
            counts = [count]
        } else if slot < base {
            counts.insert(contentsOf: repeatElement(0, count: base - slot), at: 0)
            base = slot
            counts[0] = count
        } else if slot - base >= counts.count {
            counts.append(contentsOf: repeatElement(0, count: slot - base - counts.count + 1))
            counts[slot - base] = count
        } else {
            counts[slot - base] += count
        }
        total += count
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for (offset, count) in other.counts.enumerated() where count > 0 { add(slot: other.base + offset, count: count) }
    }

    /// Nearest-rank percentiles for `ps` in 0...1, as `GroupTotals.latencyPercentiles` defines them on exact latencies:
    /// each is the value of the bucket holding the latency of that rank.
    public func percentiles(_ ps: [Double]) -> [Double] {
        guard total > 0 else { return ps.map { _ in 0 } }
        return ps.map { p in
            let rank = max(0, min(total - 1, Int((p * Double(total)).rounded(.up)) - 1))
            var seen = 0
            for (offset, count) in counts.enumerated() {
                seen += count
                if seen > rank { return Self.value(ofSlot: base + offset) }
            }
            return Self.value(ofSlot: base + counts.count - 1)
        }
    }

    /// Sparse form for storage: (slot gap, count) pairs as LEB128 varints, slots ascending.
    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(counts.count * 2)
        var previous = 0
        for (offset, count) in counts.enumerated() where count > 0 {
            Self.appendVarint(UInt64(base + offset - previous), to: &bytes)
            Self.appendVarint(UInt64(count), to: &bytes)
            previous = base + offset
        }
        return bytes
    }

    /// Adds the counts of an `encoded()` histogram; a malformed one throws with the byte offset of the fault.
    mutating func merge(encoded bytes: UnsafeRawBufferPointer) throws(StoreError) {
        var offset = 0
        var slot = 0
        while offset < bytes.count {
            let gap = try Self.readVarint(bytes, &offset)
            let count = try Self.readVarint(bytes, &offset)
            guard gap <= UInt64(Self.slotCount), count <= UInt64(Int.max / 2) else {
                throw StoreError("latency histogram: value out of range before byte \(offset)")
            }
            slot += Int(gap)
            guard slot < Self.slotCount else { throw StoreError("latency histogram: slot \(slot) out of range before byte \(offset)") }
            add(slot: slot, count: Int(count))
        }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private static func readVarint(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) throws(StoreError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        throw StoreError("latency histogram: truncated or overlong varint at byte \(offset)")
    }
}
