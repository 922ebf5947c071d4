import FathomModel
/// CEL timestamps (RFC 3339) and durations ("1h30m", "1.5s", "250ms") to and from nanoseconds, without Foundation.
enum KFLTime {
    static let nanosecondsPerSecond: Int64 = 1_000_000_000

    /// Parses "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250+02:00"; nil when malformed or out of range.
    static func parseTimestamp(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<index + digits] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            index += digits
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
              let second = number(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                if digits < 9 { fraction = fraction * 10 + Int64(bytes[index] - 0x30) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { fraction *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if expect("Zz") {
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let offsetHours = number(2), expect(":"), let offsetMinutes = number(2), offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let seconds = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
            - offsetSeconds
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: nanosecondsPerSecond)
        guard !overflow else { return nil }
        let (total, overflow2) = scaled.addingReportingOverflow(fraction)
        return overflow2 ? nil : total
    }

    /// RFC 3339 in UTC, with as many fractional digits as needed.
    static func format(timestampNanoseconds: Int64) -> String {
        let (seconds, nanoseconds) = floorDivide(timestampNanoseconds, nanosecondsPerSecond)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(secondOfDay / 3600, 2) + ":"
            + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        if nanoseconds != 0 { text += "." + trimmedFraction(nanoseconds) }
        return text + "Z"
    }

    /// Parses a Go/CEL duration: an optional sign, then numbers with units h, m, s, ms, us, µs, ns ("1h30m", "-1.5s").
    static func parseDuration(_ text: String) -> Int64? {
        var scalars = Array(text.unicodeScalars)[...]
        var sign: Int64 = 1
        if let first = scalars.first, first == "-" || first == "+" {
            sign = first == "-" ? -1 : 1
            scalars = scalars.dropFirst()
        }
        if scalars == ["0"] { return 0 }
        guard !scalars.isEmpty else { return nil }
        var total: Int64 = 0
        while !scalars.isEmpty {
            var whole: Int64 = 0
            var fraction: Int64 = 0
            var fractionScale: Int64 = 1
            var sawDigit = false
            while let scalar = scalars.first, let digit = asciiDigit(scalar) {
                let (shifted, overflow) = whole.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(digit)
                guard !overflow, !overflow2 else { return nil }
                whole = sum
                sawDigit = true
                scalars = scalars.dropFirst()
            }
            if scalars.first == "." {
                scalars = scalars.dropFirst()
                while let scalar = scalars.first, let digit = asciiDigit(scalar) {
                    if fractionScale < 1_000_000_000 {
                        fraction = fraction * 10 + digit
                        fractionScale *= 10
                    }
                    sawDigit = true
                    scalars = scalars.dropFirst()
                }
            }
            guard sawDigit else { return nil }
            let unit = String(String.UnicodeScalarView(scalars.prefix { !("0"..."9").contains($0) && $0 != "." }))
            scalars = scalars.dropFirst(unit.unicodeScalars.count)
            let unitNanoseconds: Int64
            switch unit {
            case "h": unitNanoseconds = 3600 * nanosecondsPerSecond
            case "m": unitNanoseconds = 60 * nanosecondsPerSecond
            case "s": unitNanoseconds = nanosecondsPerSecond
            case "ms": unitNanoseconds = 1_000_000
            case "us", "µs", "μs": unitNanoseconds = 1_000
            case "ns": unitNanoseconds = 1
            default: return nil
            }
            let (wholePart, overflow) = whole.multipliedReportingOverflow(by: unitNanoseconds)
            guard !overflow else { return nil }
            let fractionPart = Int64((Double(fraction) / Double(fractionScale) * Double(unitNanoseconds)).rounded())
            let (sum, overflow2) = total.addingReportingOverflow(wholePart)
            guard !overflow2, sum <= Int64.max - fractionPart else { return nil }
            total = sum + fractionPart
        }
        return sign * total
    }

    /// CEL's string form of a duration: seconds with a fraction when needed ("90s", "1.5s").
    static func format(durationNanoseconds: Int64) -> String {
        let negative = durationNanoseconds < 0
        let magnitude = durationNanoseconds.magnitude
        let seconds = magnitude / UInt64(nanosecondsPerSecond)
        let nanoseconds = Int64(magnitude % UInt64(nanosecondsPerSecond))
        var text = (negative ? "-" : "") + String(seconds)
        if nanoseconds != 0 { text += "." + trimmedFraction(nanoseconds) }
        return text + "s"
    }

    private static func asciiDigit(_ scalar: Unicode.Scalar) -> Int64? {
        ("0"..."9").contains(scalar) ? Int64(scalar.value - 48) : nil
    }

    private static func trimmedFraction(_ nanoseconds: Int64) -> String {
        var digits = pad(nanoseconds, 9)
        while digits.hasSuffix("0") { digits.removeLast() }
        return digits
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value.magnitude)
        return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }


}
