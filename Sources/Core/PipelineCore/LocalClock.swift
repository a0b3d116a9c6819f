import Foundation

/// A time of day on the wall clock, to the second: what `--bwlimit` timetables and `--window` are written in.
public struct TimeOfDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since midnight, 0..<86400.
    public let seconds: Int

    public init(seconds: Int) {
        precondition((0..<86_400).contains(seconds), "a time of day")
        self.seconds = seconds
    }

    public init(hour: Int, minute: Int, second: Int = 0) {
        self.init(seconds: hour * 3600 + minute * 60 + second)
    }

    /// `HH:MM` (as rclone writes it) or `HH:MM:SS`; nil for anything else.
    public init?(parsing text: Substring) {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(fields.count), fields.allSatisfy({ (1...2).contains($0.count) && $0.allSatisfy(\.isASCII) }),
              let hour = Int(fields[0]), let minute = Int(fields[1]), (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        let second = fields.count == 3 ? Int(fields[2]) : 0
        guard let second, (0..<60).contains(second) else { return nil }
        self.init(hour: hour, minute: minute, second: second)
    }

    /// `08:00`, or `08:00:30` when the seconds matter.
    public var description: String {
        let text = String(format: "%02d:%02d", seconds / 3600, seconds / 60 % 60)
        return seconds % 60 == 0 ? text : text + String(format: ":%02d", seconds % 60)
    }

    public static func < (lhs: TimeOfDay, rhs: TimeOfDay) -> Bool { lhs.seconds < rhs.seconds }
}

/// Reads instants as wall-clock times of one time zone and back; DST-safe: a wall time that does not exist on a
/// day (the hour skipped in spring) resolves to the moment the clock jumps past it, and every question is asked of
/// the wall clock, so an hour repeated in autumn is simply read twice, as a person would.
struct LocalClock: Sendable {
    let calendar: Calendar

    init(timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    struct Reading {
        /// The wall-clock time of day.
        var time: TimeOfDay
        /// 0 = Monday … 6 = Sunday.
        var weekday: Int
        /// The calendar day, for `instant(onDayOf:plusDays:at:)`.
        var day: DateComponents
    }

    func read(_ date: Date) -> Reading {
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let seconds = (parts.hour ?? 0) * 3600 + (parts.minute ?? 0) * 60 + (parts.second ?? 0)
        return Reading(time: TimeOfDay(seconds: min(max(seconds, 0), 86_399)), weekday: ((parts.weekday ?? 2) + 5) % 7,
                       day: DateComponents(year: parts.year, month: parts.month, day: parts.day))
    }

    /// The instant at which the wall clock shows `time` on the day `days` after `reading`'s day.
    func instant(onDayOf reading: Reading, plusDays days: Int, at time: TimeOfDay) -> Date {
        var components = reading.day
        components.day = (components.day ?? 1) + days
        components.hour = time.seconds / 3600
        components.minute = time.seconds / 60 % 60
        components.second = time.seconds % 60
        let resolved = calendar.date(from: components) ?? Date.distantFuture
        // A wall time skipped by a DST jump comes back shifted past the jump (02:30 → 03:30); the first moment the
        // clock shows a later time is the jump itself.
        let shown = read(resolved)
        if shown.time != time, shown.day == normalisedDay(components),
           let jump = calendar.timeZone.nextDaylightSavingTimeTransition(after: resolved.addingTimeInterval(-4 * 3600)),
           jump <= resolved {
            return jump
        }
        return resolved
    }

    private func normalisedDay(_ components: DateComponents) -> DateComponents {
        var day = components
        day.hour = 12
        day.minute = 0
        day.second = 0
        guard let noon = calendar.date(from: day) else { return components }
        return read(noon).day
    }
}

extension Format {
    /// "01:00" for a moment later today, "2025-03-31 01:00" for another day (in `timeZone`).
    public static func wallTime(_ date: Date, now: Date, timeZone: TimeZone) -> String {
        let clock = LocalClock(timeZone: timeZone)
        let then = clock.read(date)
        guard then.day != clock.read(now).day else { return then.time.description }
        return String(format: "%04d-%02d-%02d ", then.day.year ?? 0, then.day.month ?? 0, then.day.day ?? 0) + then.time.description
    }
}
