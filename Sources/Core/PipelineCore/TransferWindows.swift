import Foundation

/// `--window HH:MM-HH:MM`: a daily span of wall-clock time in which transfers may start. The start is included,
/// the end is not; a window whose end is earlier than its start crosses midnight (`22:00-06:00`).
public struct TransferWindow: Sendable, Hashable, CustomStringConvertible {
    public var start: TimeOfDay
    public var end: TimeOfDay

    public init(start: TimeOfDay, end: TimeOfDay) {
        self.start = start
        self.end = end
    }

    /// `HH:MM-HH:MM` (seconds allowed: `HH:MM:SS`).
    public init(parsing text: String, setting: String = "--window") throws(ConfigurationError) {
        let name = "\(setting) \"\(text)\""
        let halves = text.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
        guard halves.count == 2 else { throw ConfigurationError(setting: name, problem: "not a window (use HH:MM-HH:MM, e.g. 22:00-06:00)") }
        guard let start = TimeOfDay(parsing: halves[0]) else {
            throw ConfigurationError(setting: name, problem: "\"\(halves[0])\" is not a time of day (use HH:MM, 00:00 to 23:59)")
        }
        guard let end = TimeOfDay(parsing: halves[1]) else {
            throw ConfigurationError(setting: name, problem: "\"\(halves[1])\" is not a time of day (use HH:MM, 00:00 to 23:59)")
        }
        guard start != end else { throw ConfigurationError(setting: name, problem: "the window is empty (start and end are the same)") }
        self.init(start: start, end: end)
    }

    public func contains(_ time: TimeOfDay) -> Bool {
        start < end ? (start <= time && time < end) : (time >= start || time < end)
    }

    public var description: String { "\(start)-\(end)" }
}

/// The `--window`s of a run. No window at all means always open.
public struct TransferWindows: Sendable, Hashable {
    public let windows: [TransferWindow]

    public init(_ windows: [TransferWindow]) {
        self.windows = windows
    }

    public static let always = TransferWindows([])

    public var isAlwaysOpen: Bool { windows.isEmpty }

    /// Whether a transfer may start at `date` (wall clock of `timeZone`).
    public func isOpen(at date: Date, in timeZone: TimeZone) -> Bool {
        guard !windows.isEmpty else { return true }
        let time = LocalClock(timeZone: timeZone).read(date).time
        return windows.contains { $0.contains(time) }
    }

    /// When transfers may start again: `date` itself when a window is open then, else the next window's opening.
    public func nextOpening(after date: Date, in timeZone: TimeZone) -> Date {
        guard !isOpen(at: date, in: timeZone) else { return date }
        let clock = LocalClock(timeZone: timeZone)
        let reading = clock.read(date)
        var best = Date.distantFuture
        for days in 0...2 {
            for window in windows {
                let opening = clock.instant(onDayOf: reading, plusDays: days, at: window.start)
                if opening > date, opening < best { best = opening }
            }
        }
        return best
    }

    /// When the open period around `date` ends (windows that touch or overlap count as one); nil when no window
    /// is open at `date` or the windows never close (they cover the whole day).
    public func nextClosing(after date: Date, in timeZone: TimeZone) -> Date? {
        guard !windows.isEmpty, isOpen(at: date, in: timeZone) else { return nil }
        let clock = LocalClock(timeZone: timeZone)
        let reading = clock.read(date)
        var ends: [Date] = []
        for days in 0...2 {
            for window in windows {
                let end = clock.instant(onDayOf: reading, plusDays: days, at: window.end)
                if end > date { ends.append(end) }
            }
        }
        return ends.sorted().first { !isOpen(at: $0, in: timeZone) }
    }

    /// Parses every `--window` value. `always` means no window at all: the way to lift configured windows for one
    /// run (`uploader verify --window always`).
    public init(parsing values: [String], setting: String = "--window") throws(ConfigurationError) {
        var windows: [TransferWindow] = []
        for value in values {
            // The config file holds them in one setting, separated by spaces or commas.
            for part in value.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
                if part.lowercased() == "always" {
                    self.init([])
                    return
                }
                windows.append(try TransferWindow(parsing: String(part), setting: setting))
            }
        }
        self.init(windows)
    }
}

/// Everything that paces a process's object-store transfers: the bandwidth schedule, the windows and the time
/// zone both are read in.
public struct TransferLimits: Sendable, Hashable {
    public var bandwidth: BandwidthSchedule
    public var windows: TransferWindows
    public var timeZone: TimeZone

    public init(bandwidth: BandwidthSchedule = .off, windows: TransferWindows = .always, timeZone: TimeZone = .current) {
        self.bandwidth = bandwidth
        self.windows = windows
        self.timeZone = timeZone
    }

    /// Nothing to meter and nothing to wait for.
    public var isUnlimited: Bool { bandwidth.isOff && windows.isAlwaysOpen }

    public enum Key {
        public static let bandwidth = "BACKUP_BWLIMIT"
        public static let windows = "BACKUP_WINDOWS"
        public static let timeZone = "BACKUP_TIMEZONE"
    }

    /// The flags, else the settings (`BACKUP_BWLIMIT`, `BACKUP_WINDOWS`, `BACKUP_TIMEZONE` from the environment or
    /// the config file); each bad value is one line naming the flag or setting it came from.
    public static func resolve(
        bandwidth: String?, windows: [String], timeZone: String?, settings: (String) -> String?
    ) throws(ConfigurationError) -> TransferLimits {
        var limits = TransferLimits()
        if let text = bandwidth {
            limits.bandwidth = try BandwidthSchedule(parsing: text, setting: "--bwlimit")
        } else if let text = settings(Key.bandwidth) {
            limits.bandwidth = try BandwidthSchedule(parsing: text, setting: Key.bandwidth)
        }
        if !windows.isEmpty {
            limits.windows = try TransferWindows(parsing: windows, setting: "--window")
        } else if let text = settings(Key.windows) {
            limits.windows = try TransferWindows(parsing: [text], setting: Key.windows)
        }
        let zoneSetting = timeZone != nil ? "--timezone" : Key.timeZone
        if let name = timeZone ?? settings(Key.timeZone) {
            guard let zone = TimeZone(identifier: name) else {
                throw ConfigurationError(setting: "\(zoneSetting) \"\(name)\"", problem: "not a time zone (use an IANA name such as Europe/Berlin or UTC)")
            }
            limits.timeZone = zone
        }
        return limits
    }
}
