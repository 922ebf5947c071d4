import FathomModel
/// Segment file names: `20261121T085642.123456789Z-0000000042.pcapng`, the UTC time of the segment's first packet
/// to the nanosecond, then a sequence number. Fixed width, so sorting names sorts segments by time (and by
/// creation order among segments that start in the same nanosecond).
enum SegmentName {
    static let suffix = ".pcapng"
    static let sequenceDigits = 10
    /// "YYYYMMDDTHHMMSS.nnnnnnnnnZ-" + sequence + ".pcapng"
    static let length = 27 + sequenceDigits + suffix.utf8.count

    static func make(firstPacketNanoseconds: UInt64, sequence: UInt64) -> String {
        let seconds = firstPacketNanoseconds / 1_000_000_000
        let (days, secondOfDay) = (Int64(seconds / 86_400), Int(seconds % 86_400))
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        var name = ""
        name.reserveCapacity(length)
        appendDigits(&name, UInt64(year), 4)
        appendDigits(&name, UInt64(month), 2)
        appendDigits(&name, UInt64(day), 2)
        name += "T"
        appendDigits(&name, UInt64(secondOfDay / 3600), 2)
        appendDigits(&name, UInt64(secondOfDay / 60 % 60), 2)
        appendDigits(&name, UInt64(secondOfDay % 60), 2)
        name += "."
        appendDigits(&name, firstPacketNanoseconds % 1_000_000_000, 9)
        name += "Z-"
        appendDigits(&name, sequence, sequenceDigits)
        return name + suffix
    }

    /// The first-packet time and sequence number a segment name encodes, or nil for any other file name.
    static func parse(_ name: String) -> (firstPacketNanoseconds: UInt64, sequence: UInt64)? {
        let bytes = Array(name.utf8)
        guard bytes.count == length, name.hasSuffix(suffix), bytes[8] == UInt8(ascii: "T"),
              bytes[15] == UInt8(ascii: "."), bytes[25] == UInt8(ascii: "Z"), bytes[26] == UInt8(ascii: "-"),
              let year = number(bytes, 0, 4), let month = number(bytes, 4, 2), let day = number(bytes, 6, 2),
              let hour = number(bytes, 9, 2), let minute = number(bytes, 11, 2), let second = number(bytes, 13, 2),
              let nanosecond = number(bytes, 16, 9), let sequence = number(bytes, 27, sequenceDigits),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60,
              year >= 1970
        else { return nil }
        let days = daysSinceEpoch(year: Int64(year), month: Int64(month), day: Int64(day))
        let seconds = UInt64(days) * 86_400 + hour * 3600 + minute * 60 + second
        return (seconds * 1_000_000_000 + nanosecond, sequence)
    }

    private static func appendDigits(_ string: inout String, _ value: UInt64, _ width: Int) {
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
        var rest = value
        for index in stride(from: width - 1, through: 0, by: -1) {
            digits[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        string += String(decoding: digits, as: UTF8.self)
    }

    private static func number(_ bytes: [UInt8], _ start: Int, _ width: Int) -> UInt64? {
        var value: UInt64 = 0
        for byte in bytes[start..<start + width] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        return value
    }


    /// Day count since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
