import Foundation
import PipelineCore
import Testing

@Suite("Bandwidth schedules and transfer windows")
struct TransferLimitsTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let berlin = TimeZone(identifier: "Europe/Berlin")!

    /// An instant given as wall-clock time in `zone`.
    func at(_ text: String, _ zone: TimeZone = utc) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let numbers = text.split(whereSeparator: { !$0.isNumber }).map { Int($0)! }
        return calendar.date(from: DateComponents(year: numbers[0], month: numbers[1], day: numbers[2], hour: numbers[3],
                                                  minute: numbers[4], second: numbers.count > 5 ? numbers[5] : 0))!
    }

    func problem(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as ConfigurationError { return error.description } catch { return "not a ConfigurationError: \(error)" }
        return nil
    }

    @Test("plain rates: binary suffixes, bare numbers in KiB/s, off, and upload:download pairs")
    func plainRates() throws {
        #expect(try BandwidthSchedule(parsing: "1M").slots.first?.limit == BandwidthLimit(upload: 1 << 20, download: 1 << 20))
        #expect(try BandwidthSchedule(parsing: "512K").slots.first?.limit.upload == 512 << 10)
        #expect(try BandwidthSchedule(parsing: "512").slots.first?.limit.upload == 512 << 10)
        #expect(try BandwidthSchedule(parsing: "1.5M").slots.first?.limit.upload == 3 << 19)
        #expect(try BandwidthSchedule(parsing: "2MiB").slots.first?.limit.upload == 2 << 20)
        #expect(try BandwidthSchedule(parsing: "4096B").slots.first?.limit.upload == 4096)
        #expect(try BandwidthSchedule(parsing: "1g").slots.first?.limit.upload == 1 << 30)
        #expect(try BandwidthSchedule(parsing: "off").isOff)
        let pair = try BandwidthSchedule(parsing: "1M:512K")
        #expect(pair.slots.first?.limit == BandwidthLimit(upload: 1 << 20, download: 512 << 10))
        let uploadOnly = try BandwidthSchedule(parsing: "2M:off")
        #expect(uploadOnly.limitsUploads && !uploadOnly.limitsDownloads)
        #expect(pair.nextChange(after: Date(), in: Self.utc) == nil)
    }

    @Test("bad values give one line naming the value and what is wrong")
    func badValues() {
        #expect(problem { _ = try BandwidthSchedule(parsing: "08:00,5X") }
            == #"configuration error: --bwlimit "08:00,5X": "5X" is not a rate (use 512K, 2M, off)"#)
        #expect(problem { _ = try BandwidthSchedule(parsing: "fast") }?.contains(#""fast" is not a rate"#) == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "25:00,1M") }?.contains(#""25:00" is not a time of day"#) == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "Xyz-08:00,1M") }?.contains(#""Xyz" is not a weekday"#) == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "08:00 1M") }?.contains("is not a timetable entry") == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "100B") }?.contains("below 1K") == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "1M:2M:3M") }?.contains("UPLOAD:DOWNLOAD") == true)
        #expect(problem { _ = try BandwidthSchedule(parsing: "1M", setting: "BACKUP_BWLIMIT") } == nil)
        #expect(problem { _ = try BandwidthSchedule(parsing: "1Q", setting: "BACKUP_BWLIMIT") }?.hasPrefix(#"configuration error: BACKUP_BWLIMIT "1Q""#) == true)
        #expect(problem { _ = try TransferWindow(parsing: "22:00") }?.contains("use HH:MM-HH:MM") == true)
        #expect(problem { _ = try TransferWindow(parsing: "22:00-22:00") }?.contains("empty") == true)
        #expect(problem { _ = try TransferWindow(parsing: "22:00-6pm") }?.contains(#""6pm" is not a time of day"#) == true)
        #expect(problem { _ = try TransferLimits.resolve(bandwidth: nil, windows: [], timeZone: "Mars/Olympus", settings: { _ in nil }) }
            == #"configuration error: --timezone "Mars/Olympus": not a time zone (use an IANA name such as Europe/Berlin or UTC)"#)
    }

    @Test("a daily timetable: each entry holds until the next, the last one carries over midnight")
    func dailyTimetable() throws {
        let schedule = try BandwidthSchedule(parsing: "08:00,512K 19:00,2M 23:00,off")
        #expect(schedule.limit(at: at("2025-06-02 07:59:59"), in: Self.utc) == .off)
        #expect(schedule.limit(at: at("2025-06-02 08:00"), in: Self.utc).upload == 512 << 10)
        #expect(schedule.limit(at: at("2025-06-02 18:59"), in: Self.utc).upload == 512 << 10)
        #expect(schedule.limit(at: at("2025-06-02 19:00"), in: Self.utc).upload == 2 << 20)
        #expect(schedule.limit(at: at("2025-06-02 23:30"), in: Self.utc) == .off)
        #expect(schedule.nextChange(after: at("2025-06-02 07:00"), in: Self.utc) == at("2025-06-02 08:00"))
        #expect(schedule.nextChange(after: at("2025-06-02 08:00"), in: Self.utc) == at("2025-06-02 19:00"))
        #expect(schedule.nextChange(after: at("2025-06-02 23:10"), in: Self.utc) == at("2025-06-03 08:00"))
        // The same wall times in another zone.
        #expect(schedule.limit(at: at("2025-06-02 08:30", Self.berlin), in: Self.berlin).upload == 512 << 10)
        #expect(schedule.limit(at: at("2025-06-02 08:30", Self.berlin), in: Self.utc) == .off)
        // Seconds, for schedules a few seconds ahead.
        #expect(try BandwidthSchedule(parsing: "10:00:30,1M 10:00:45,off").nextChange(after: at("2025-06-02 10:00:31"), in: Self.utc)
            == at("2025-06-02 10:00:45"))
    }

    @Test("weekday entries, and daily entries between them, as rclone expands them")
    func weeklyTimetable() throws {
        // 2025-06-02 is a Monday.
        let schedule = try BandwidthSchedule(parsing: "Mon-00:00,512K 12:00,1M Sun-20:00,off")
        #expect(schedule.limit(at: at("2025-06-02 11:00"), in: Self.utc).upload == 512 << 10)
        #expect(schedule.limit(at: at("2025-06-02 13:00"), in: Self.utc).upload == 1 << 20)
        #expect(schedule.limit(at: at("2025-06-05 01:00"), in: Self.utc).upload == 1 << 20, "Thursday night still has Wednesday's 12:00 rate")
        #expect(schedule.limit(at: at("2025-06-08 21:00"), in: Self.utc) == .off, "Sunday after 20:00")
        #expect(schedule.nextChange(after: at("2025-06-08 21:00"), in: Self.utc) == at("2025-06-09 00:00"))
        let weekend = try BandwidthSchedule(parsing: "Sat-00:00,off Mon-00:00,256K")
        #expect(weekend.limit(at: at("2025-06-07 10:00"), in: Self.utc) == .off)
        #expect(weekend.limit(at: at("2025-06-04 10:00"), in: Self.utc).download == 256 << 10)
        #expect(weekend.nextChange(after: at("2025-06-04 10:00"), in: Self.utc) == at("2025-06-07 00:00"))
    }

    @Test("windows: inside, outside, the next opening and closing, also across midnight")
    func windowsAcrossMidnight() throws {
        let night = try TransferWindows(parsing: ["22:00-06:00"])
        #expect(night.isOpen(at: at("2025-06-02 23:00"), in: Self.utc))
        #expect(night.isOpen(at: at("2025-06-02 05:59:59"), in: Self.utc))
        #expect(!night.isOpen(at: at("2025-06-02 06:00"), in: Self.utc))
        #expect(night.nextOpening(after: at("2025-06-02 12:00"), in: Self.utc) == at("2025-06-02 22:00"))
        #expect(night.nextOpening(after: at("2025-06-02 23:00"), in: Self.utc) == at("2025-06-02 23:00"), "open now: now")
        #expect(night.nextClosing(after: at("2025-06-02 23:00"), in: Self.utc) == at("2025-06-03 06:00"))
        #expect(night.nextClosing(after: at("2025-06-03 01:00"), in: Self.utc) == at("2025-06-03 06:00"))
        #expect(night.nextClosing(after: at("2025-06-03 12:00"), in: Self.utc) == nil)

        let two = try TransferWindows(parsing: ["01:00-07:00", "12:00-13:00"])
        #expect(two.nextOpening(after: at("2025-06-02 07:30"), in: Self.utc) == at("2025-06-02 12:00"))
        #expect(two.nextOpening(after: at("2025-06-02 13:30"), in: Self.utc) == at("2025-06-03 01:00"))
        // Touching windows are one open period; windows covering the day never close.
        let chained = try TransferWindows(parsing: ["20:00-23:00 23:00-02:00"])
        #expect(chained.nextClosing(after: at("2025-06-02 21:00"), in: Self.utc) == at("2025-06-03 02:00"))
        #expect(try TransferWindows(parsing: ["00:00-12:00,12:00-00:00"]).nextClosing(after: at("2025-06-02 21:00"), in: Self.utc) == nil)
        #expect(TransferWindows.always.isOpen(at: Date(), in: Self.utc))
    }

    @Test("DST: a window opening in the skipped hour opens at the jump; wall-clock windows keep their wall times")
    func daylightSaving() throws {
        // Europe/Berlin: 2025-03-30 02:00 CET → 03:00 CEST; 2025-10-26 03:00 CEST → 02:00 CET.
        let skipped = try TransferWindows(parsing: ["02:30-04:00"])
        let opening = skipped.nextOpening(after: at("2025-03-30 01:00", Self.berlin), in: Self.berlin)
        #expect(opening == Date(timeIntervalSince1970: 1_743_296_400), "01:00 UTC, the moment the clock jumps to 03:00")
        #expect(skipped.isOpen(at: opening, in: Self.berlin))
        #expect(skipped.nextClosing(after: opening, in: Self.berlin) == at("2025-03-30 04:00", Self.berlin))

        // A night window on the spring day is an hour shorter in real time, on the autumn day an hour longer.
        let night = try TransferWindows(parsing: ["01:00-07:00"])
        let springOpen = night.nextOpening(after: at("2025-03-29 12:00", Self.berlin), in: Self.berlin)
        let springClose = try #require(night.nextClosing(after: springOpen, in: Self.berlin))
        #expect(springClose.timeIntervalSince(springOpen) == 5 * 3600)
        let autumnOpen = night.nextOpening(after: at("2025-10-25 12:00", Self.berlin), in: Self.berlin)
        let autumnClose = try #require(night.nextClosing(after: autumnOpen, in: Self.berlin))
        #expect(autumnClose.timeIntervalSince(autumnOpen) == 7 * 3600)

        // The bandwidth timetable changes at wall times too.
        let schedule = try BandwidthSchedule(parsing: "08:00,512K 19:00,2M")
        #expect(schedule.nextChange(after: at("2025-03-29 20:00", Self.berlin), in: Self.berlin) == at("2025-03-30 08:00", Self.berlin))
        #expect(at("2025-03-30 08:00", Self.berlin).timeIntervalSince(at("2025-03-29 19:00", Self.berlin)) == 12 * 3600)
    }

    @Test("settings: flags win, the config file's names are BACKUP_BWLIMIT, BACKUP_WINDOWS and BACKUP_TIMEZONE")
    func settings() throws {
        let file = ["BACKUP_BWLIMIT": "08:00,512K 23:00,off", "BACKUP_WINDOWS": "01:00-07:00 22:00-23:00", "BACKUP_TIMEZONE": "Europe/Berlin"]
        let fromFile = try TransferLimits.resolve(bandwidth: nil, windows: [], timeZone: nil, settings: { file[$0] })
        #expect(fromFile.bandwidth.slots.count == 14)
        #expect(fromFile.windows.windows.count == 2)
        #expect(fromFile.timeZone.identifier == "Europe/Berlin")
        let flags = try TransferLimits.resolve(bandwidth: "off", windows: ["02:00-03:00"], timeZone: "UTC", settings: { file[$0] })
        #expect(flags.bandwidth.isOff)
        #expect(flags.windows.windows == [TransferWindow(start: TimeOfDay(hour: 2, minute: 0), end: TimeOfDay(hour: 3, minute: 0))])
        #expect(flags.timeZone.secondsFromGMT() == 0)
        #expect(try TransferLimits.resolve(bandwidth: nil, windows: [], timeZone: nil, settings: { _ in nil }).isUnlimited)
        // `--window always` lifts the configured windows for one run, whatever else is given with it.
        let lifted = try TransferLimits.resolve(bandwidth: "off", windows: ["always"], timeZone: nil, settings: { file[$0] })
        #expect(lifted.windows.isAlwaysOpen && lifted.isUnlimited)
        #expect(try TransferWindows(parsing: ["01:00-02:00", "ALWAYS"]).isAlwaysOpen)
        #expect(try TransferLimits.resolve(bandwidth: nil, windows: [], timeZone: nil, settings: { $0 == "BACKUP_WINDOWS" ? "always" : nil }).isUnlimited)
        #expect(problem { _ = try TransferLimits.resolve(bandwidth: nil, windows: [], timeZone: nil, settings: { $0 == "BACKUP_WINDOWS" ? "1-2" : nil }) }?
            .hasPrefix(#"configuration error: BACKUP_WINDOWS "1-2""#) == true)
    }

    @Test("a pause's end reads as a time today, with the date on another day")
    func wallTimeFormat() {
        #expect(Format.wallTime(at("2025-06-02 23:00"), now: at("2025-06-02 12:00"), timeZone: Self.utc) == "23:00")
        #expect(Format.wallTime(at("2025-06-03 01:00"), now: at("2025-06-02 12:00"), timeZone: Self.utc) == "2025-06-03 01:00")
        #expect(Format.wallTime(at("2025-06-02 12:00:30"), now: at("2025-06-02 12:00"), timeZone: Self.utc) == "12:00:30")
    }
}
