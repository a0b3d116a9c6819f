import Foundation

/// The signing time in the two UTC spellings SigV4 uses, computed arithmetically so that it depends
/// on neither the locale, the time zone nor a formatter (and so is trivially Sendable and pure).
struct SigV4Timestamp: Sendable, Hashable {
    /// `yyyyMMdd'T'HHmmss'Z'`, the `X-Amz-Date` value.
    let amzDate: String
    /// `yyyyMMdd`, the date of the credential scope.
    let dateStamp: String
    /// `yyyy-MM-dd'T'HH:mm:ss'Z'`, for human-readable output.
    let iso8601: String

    init(_ date: Date) {
        // SigV4 has one-second resolution; fractions are dropped (floor, also before 1970).
        let seconds = Int64((date.timeIntervalSince1970).rounded(.down))
        let days = Self.floorDiv(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = Self.civilFromDays(days)
        let hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60

        let y = Self.pad(year, 4), mo = Self.pad(month, 2), d = Self.pad(day, 2)
        let h = Self.pad(hour, 2), mi = Self.pad(minute, 2), s = Self.pad(second, 2)
        dateStamp = y + mo + d
        amzDate = "\(dateStamp)T\(h)\(mi)\(s)Z"
        iso8601 = "\(y)-\(mo)-\(d)T\(h):\(mi):\(s)Z"
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    private static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
