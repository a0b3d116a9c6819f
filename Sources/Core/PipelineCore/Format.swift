import Foundation

/// Numbers as people read them (the status page, alert messages).
public enum Format {
    /// 1536 → "1.5 KiB"; binary units, three significant digits.
    public static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var amount = Double(value)
        var unit = 0
        while abs(amount) >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        if unit == 0 { return "\(value) B" }
        let digits = abs(amount) >= 100 ? 0 : (abs(amount) >= 10 ? 1 : 2)
        return String(format: "%.\(digits)f %@", amount, units[unit])
    }

    /// 1234567 → "1,234,567".
    public static func count(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return (value < 0 ? "-" : "") + result
    }

    public static func percent(_ ratio: Double) -> String {
        let value = ratio * 100
        if value > 0 && value < 0.1 { return "<0.1%" }
        if value < 100 && value > 99.9 { return "99.9%" }
        return String(format: value == value.rounded() ? "%.0f%%" : "%.1f%%", value)
    }

    /// 3725 → "1 h 2 min".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "—" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min \(total % 60 == 0 ? "" : "\(total % 60) s")".trimmingCharacters(in: .whitespaces) }
        if total < 86400 { return total % 3600 / 60 == 0 ? "\(total / 3600) h" : "\(total / 3600) h \(total % 3600 / 60) min" }
        return total % 86400 / 3600 == 0 ? "\(total / 86400) d" : "\(total / 86400) d \(total % 86400 / 3600) h"
    }

    public static func age(_ seconds: Double) -> String {
        seconds < 1 ? "just now" : duration(seconds) + " ago"
    }

    public static func rate(_ bytesPerSecond: Double) -> String {
        bytesPerSecond <= 0 ? "—" : bytes(Int64(bytesPerSecond)) + "/s"
    }

    public static func eta(_ seconds: Double?) -> String {
        guard let seconds else { return "—" }
        return seconds <= 0 ? "done" : duration(seconds)
    }

    public static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: date)
    }

    public static func shortTime(_ date: Date, withDate: Bool) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = withDate ? "MMM d HH:mm" : "HH:mm"
        return formatter.string(from: date)
    }
}
