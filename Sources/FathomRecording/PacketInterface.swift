import FathomModel

/// What a reader knows about the interface packets were captured on: link type, snap length, and how to turn
/// its timestamps into nanoseconds since the epoch.
struct PacketInterface {
    var linkType: UInt16
    var snapLength: UInt32
    /// Timestamp units per second (10^6 unless if_tsresol says otherwise).
    var unitsPerSecond: UInt64 = 1_000_000
    /// Nanoseconds per unit when a unit is a whole number of nanoseconds, else 0 (use the general path).
    var nanosecondsPerUnit: UInt64 = 1000
    /// if_tsoffset, in nanoseconds.
    var offsetNanoseconds: UInt64 = 0
    /// The capture source named by a Fathom if_name ("fathom-ebpf"…); `.pcap` for other tools' interfaces.
    var source: CaptureSource = .pcap

    static let nanosecondsPerSecond: UInt64 = 1_000_000_000

    /// Applies an if_tsresol byte; false when it describes a resolution that does not fit 64 bits.
    mutating func setResolution(_ value: UInt8) -> Bool {
        if value & 0x80 == 0 {
            guard value <= 19 else { return false }
            var units: UInt64 = 1
            for _ in 0..<value { units *= 10 }
            unitsPerSecond = units
        } else {
            let exponent = value & 0x7F
            guard exponent <= 63 else { return false }
            unitsPerSecond = 1 << exponent
        }
        nanosecondsPerUnit = Self.nanosecondsPerSecond % unitsPerSecond == 0
            ? Self.nanosecondsPerSecond / unitsPerSecond : 0
        return true
    }

    /// Converts a timestamp in this interface's units to nanoseconds since the epoch (wrapping, never trapping).
    @inline(__always)
    func nanoseconds(_ timestamp: UInt64) -> UInt64 {
        if nanosecondsPerUnit != 0 { return timestamp &* nanosecondsPerUnit &+ offsetNanoseconds }
        let (seconds, remainder) = timestamp.quotientAndRemainder(dividingBy: unitsPerSecond)
        let fraction = unitsPerSecond.dividingFullWidth(remainder.multipliedFullWidth(by: Self.nanosecondsPerSecond))
        return seconds &* Self.nanosecondsPerSecond &+ fraction.quotient &+ offsetNanoseconds
    }
}
