import Foundation

/// An upload and a download rate in bytes per second; nil means no limit.
public struct BandwidthLimit: Sendable, Hashable, CustomStringConvertible {
    public var upload: Int?
    public var download: Int?

    public init(upload: Int?, download: Int?) {
        self.upload = upload
        self.download = download
    }

    public static let off = BandwidthLimit(upload: nil, download: nil)

    public var description: String {
        let up = upload.map { Format.bytes(Int64($0)) + "/s" } ?? "off"
        guard download != upload else { return up }
        return "\(up) up, \(download.map { Format.bytes(Int64($0)) + "/s" } ?? "off") down"
    }
}

/// `--bwlimit` as rclone reads it: a rate (`1M`, `512K`, `off`; a bare number is KiB/s, B/K/M/G/T are binary
/// units), an `upload:download` pair (`1M:512K`), or a timetable of `[Weekday-]HH:MM,RATE` entries
/// (`"08:00,512K 19:00,2M 23:00,off"`). As in rclone, an entry without a weekday applies every day, and each
/// entry holds until the next one, the last one of the week carrying over into the first.
public struct BandwidthSchedule: Sendable, Hashable {
    /// One timetable entry, expanded to the week: from `secondOfWeek` (0 = Monday 00:00) on, `limit` holds.
    public struct Slot: Sendable, Hashable {
        public var secondOfWeek: Int
        public var limit: BandwidthLimit
    }

    /// Sorted by `secondOfWeek`; a plain rate is one slot at 0.
    public let slots: [Slot]

    public init(constant limit: BandwidthLimit) {
        slots = [Slot(secondOfWeek: 0, limit: limit)]
    }

    public static let off = BandwidthSchedule(constant: .off)

    init(slots: [Slot]) {
        self.slots = slots
    }

    /// True when no entry limits anything: nothing needs to be metered.
    public var isOff: Bool { slots.allSatisfy { $0.limit == .off } }
    public var limitsUploads: Bool { slots.contains { $0.limit.upload != nil } }
    public var limitsDownloads: Bool { slots.contains { $0.limit.download != nil } }
    /// The smallest rate any entry sets, per direction (requests get their deadlines from it).
    public var lowestUploadRate: Int? { slots.compactMap(\.limit.upload).min() }
    public var lowestDownloadRate: Int? { slots.compactMap(\.limit.download).min() }

    /// The limit in force at `date`, read on the wall clock of `timeZone`.
    public func limit(at date: Date, in timeZone: TimeZone) -> BandwidthLimit {
        guard slots.count > 1 else { return slots.first?.limit ?? .off }
        let reading = LocalClock(timeZone: timeZone).read(date)
        let now = reading.weekday * 86_400 + reading.time.seconds
        return (slots.last { $0.secondOfWeek <= now } ?? slots.last!).limit
    }

    /// The next moment after `date` at which the timetable names another entry; nil for a plain rate.
    public func nextChange(after date: Date, in timeZone: TimeZone) -> Date? {
        guard slots.count > 1 else { return nil }
        let clock = LocalClock(timeZone: timeZone)
        let reading = clock.read(date)
        var best: Date?
        for days in 0...7 {
            let weekday = (reading.weekday + days) % 7
            for slot in slots where slot.secondOfWeek / 86_400 == weekday {
                let instant = clock.instant(onDayOf: reading, plusDays: days, at: TimeOfDay(seconds: slot.secondOfWeek % 86_400))
                if instant > date, best.map({ instant < $0 }) ?? true { best = instant }
            }
            if best != nil { break }
        }
        return best
    }

    // MARK: Parsing

    static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let weekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let rateHint = "(use 512K, 2M, off)"

    /// Parses `text`; a bad value throws one line that names `setting` and what was wrong, e.g.
    /// `--bwlimit "08:00,5X": "5X" is not a rate (use 512K, 2M, off)`.
    public init(parsing text: String, setting: String = "--bwlimit") throws(ConfigurationError) {
        let name = "\(setting) \"\(text)\""
        let entries = text.split(whereSeparator: \.isWhitespace)
        guard !entries.isEmpty else { throw ConfigurationError(setting: name, problem: "no rate given \(Self.rateHint)") }
        if entries.count == 1, !entries[0].contains(",") {
            self.init(constant: try Self.parseLimit(entries[0], setting: name))
            return
        }
        var byTime: [Int: BandwidthLimit] = [:]
        var weekly: [(second: Int, limit: BandwidthLimit)] = []
        for entry in entries {
            let parts = entry.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ConfigurationError(setting: name, problem: "\"\(entry)\" is not a timetable entry (use HH:MM,RATE or Mon-HH:MM,RATE)")
            }
            let limit = try Self.parseLimit(parts[1], setting: name)
            var when = parts[0]
            var weekday: Int?
            if let dash = when.firstIndex(of: "-") {
                let day = when[..<dash].lowercased()
                guard let index = Self.weekdays.firstIndex(of: day) ?? Self.weekdayNames.firstIndex(of: day) else {
                    throw ConfigurationError(setting: name, problem: "\"\(when[..<dash])\" is not a weekday (use Mon … Sun)")
                }
                weekday = index
                when = when[when.index(after: dash)...]
            }
            guard let time = TimeOfDay(parsing: when) else {
                throw ConfigurationError(setting: name, problem: "\"\(when)\" is not a time of day (use HH:MM, 00:00 to 23:59)")
            }
            for day in weekday.map({ [$0] }) ?? Array(0..<7) {
                let second = day * 86_400 + time.seconds
                if let earlier = byTime[second], earlier != limit {
                    throw ConfigurationError(setting: name, problem: "\(when) is given two rates")
                }
                if byTime[second] == nil { weekly.append((second, limit)) }
                byTime[second] = limit
            }
        }
        self.init(slots: weekly.sorted { $0.second < $1.second }.map { Slot(secondOfWeek: $0.second, limit: $0.limit) })
    }

    /// `RATE` or `UP:DOWN`.
    static func parseLimit(_ text: Substring, setting: String) throws(ConfigurationError) -> BandwidthLimit {
        let halves = text.split(separator: ":", omittingEmptySubsequences: false)
        switch halves.count {
        case 1:
            let rate = try parseRate(halves[0], setting: setting)
            return BandwidthLimit(upload: rate, download: rate)
        case 2:
            return BandwidthLimit(upload: try parseRate(halves[0], setting: setting), download: try parseRate(halves[1], setting: setting))
        default:
            throw ConfigurationError(setting: setting, problem: "\"\(text)\" is not a rate or an UPLOAD:DOWNLOAD pair \(rateHint)")
        }
    }

    /// `off`, or a number with an optional binary suffix (`B`, `K`, `M`, `G`, `T`, also `Ki`/`KiB`); a bare number
    /// is KiB/s, as in rclone. Returns bytes per second, nil for `off`.
    static func parseRate(_ text: Substring, setting: String) throws(ConfigurationError) -> Int? {
        if text.lowercased() == "off" { return nil }
        let notARate = ConfigurationError(setting: setting, problem: "\"\(text)\" is not a rate \(rateHint)")
        var number = text
        var unit = 1024.0
        var suffix = ""
        while let last = number.last, last.isLetter {
            suffix = String(last).lowercased() + suffix
            number = number.dropLast()
        }
        if !suffix.isEmpty {
            var letters = suffix
            if letters.count > 1, letters.hasSuffix("b") { letters.removeLast() }
            if letters.count > 1, letters.hasSuffix("i") { letters.removeLast() }
            switch letters {
            case "b": unit = 1
            case "k": unit = 1024
            case "m": unit = 1024 * 1024
            case "g": unit = 1024 * 1024 * 1024
            case "t": unit = 1024 * 1024 * 1024 * 1024
            default: throw notARate
            }
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(number),
              value.isFinite else { throw notARate }
        let bytes = value * unit
        guard bytes >= 1024 else {
            throw ConfigurationError(setting: setting, problem: "\"\(text)\" is below 1K, the smallest rate (use off for no limit)")
        }
        guard bytes < Double(Int.max / 2) else { throw ConfigurationError(setting: setting, problem: "\"\(text)\" is too large a rate") }
        return Int(bytes)
    }
}
