import Foundation
import PipelineCore
import Testing

@Suite("retention: which snapshots a restic-style policy keeps")
struct RetentionPolicyTests {
    static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    static func snapshot(_ number: Int, _ text: String) -> RetentionPolicy.Snapshot {
        RetentionPolicy.Snapshot(number: number, time: ISO8601DateFormatter().date(from: text)!)
    }

    /// Two a day on 1-3 March, one on 10 March, one on 2 April.
    static let history = [
        snapshot(1, "2026-03-01T08:00:00Z"), snapshot(2, "2026-03-01T20:00:00Z"), snapshot(3, "2026-03-02T08:00:00Z"),
        snapshot(4, "2026-03-02T20:00:00Z"), snapshot(5, "2026-03-03T08:00:00Z"), snapshot(6, "2026-03-03T20:00:00Z"),
        snapshot(7, "2026-03-10T12:00:00Z"), snapshot(8, "2026-04-02T12:00:00Z"),
    ]

    @Test("each rule by itself, as restic forget reads it")
    func rules() {
        func kept(_ policy: RetentionPolicy) -> [Int] { policy.keep(Self.history, calendar: Self.utc).keys.sorted() }
        #expect(kept(RetentionPolicy(keepLast: 3)) == [6, 7, 8])
        #expect(kept(RetentionPolicy(keepDaily: 3)) == [6, 7, 8], "the newest of each of the 3 newest days with snapshots")
        #expect(kept(RetentionPolicy(keepDaily: 5)) == [2, 4, 6, 7, 8])
        #expect(kept(RetentionPolicy(keepWeekly: 2)) == [7, 8], "ISO weeks 11 and 14 (1 March 2026 is a Sunday, in week 9)")
        #expect(kept(RetentionPolicy(keepWeekly: 3)) == [6, 7, 8])
        #expect(kept(RetentionPolicy(keepMonthly: 2)) == [7, 8])
        #expect(kept(RetentionPolicy(keepWithin: .seconds(31 * 86_400))) == [4, 5, 6, 7, 8], "within 31 days of the newest snapshot (2 March 12:00 on)")
        #expect(kept(RetentionPolicy(keepLast: 1, keepMonthly: 2)) == [7, 8])
        #expect(kept(RetentionPolicy()) == [8], "the newest is always kept")
        let reasons = RetentionPolicy(keepLast: 2, keepDaily: 1).keep(Self.history, calendar: Self.utc)
        #expect(reasons[8] == ["newest", "last", "daily"] && reasons[7] == ["last"])
    }

    @Test("days are read in the calendar's time zone")
    func timeZones() {
        var tokyo = Self.utc
        tokyo.timeZone = TimeZone(identifier: "Asia/Tokyo")!
        // 20:00 UTC on 1 March is 05:00 on 2 March in Tokyo: snapshots 2 and 3 fall on one day there.
        let kept = RetentionPolicy(keepDaily: 2).keep(Array(Self.history.prefix(3)), calendar: tokyo).keys.sorted()
        #expect(kept == [1, 3])
    }

    @Test("random histories: the newest always kept, keep-last exact, one per bucket, and more of a rule never keeps less")
    func invariants() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let count = Int.random(in: 1...40, using: &random)
            var time = Date(timeIntervalSince1970: 1_700_000_000)
            var history: [RetentionPolicy.Snapshot] = []
            for number in 1...count {
                time += Double(Int.random(in: 600...(20 * 86_400), using: &random))
                history.append(RetentionPolicy.Snapshot(number: number, time: time))
            }
            let n = Int.random(in: 1...6, using: &random)
            let last = RetentionPolicy(keepLast: n).keep(history, calendar: Self.utc)
            #expect(Set(last.keys) == Set(history.suffix(n).map(\.number)).union([count]))
            let daily = RetentionPolicy(keepDaily: n).keep(history, calendar: Self.utc)
            let days = daily.keys.map { number in Self.utc.startOfDay(for: history[number - 1].time) }
            #expect(Set(days).count == daily.count && daily.count <= max(n, 1))
            #expect(daily.keys.contains(count))
            let more = RetentionPolicy(keepDaily: n + 1).keep(history, calendar: Self.utc)
            #expect(Set(daily.keys).isSubset(of: Set(more.keys)))
            let within = RetentionPolicy(keepWithin: .seconds(Int64(n) * 86_400)).keep(history, calendar: Self.utc)
            #expect(within.keys.allSatisfy { history[$0 - 1].time >= history[count - 1].time - Double(n * 86_400) })
        }
    }

    @Test("--keep-within spans as restic writes them; anything else is one line naming the value")
    func spans() throws {
        #expect(try RetentionPolicy.parseSpan("90d") == .seconds(90 * 86_400))
        #expect(try RetentionPolicy.parseSpan("1y6m") == .seconds((365 + 180) * 86_400))
        #expect(try RetentionPolicy.parseSpan("12h") == .seconds(12 * 3600))
        for bad in ["", "90", "d", "9x", "-1d", "0d"] {
            #expect(throws: ConfigurationError.self) { try RetentionPolicy.parseSpan(bad) }
        }
        do {
            _ = try RetentionPolicy.parseSpan("9x")
        } catch {
            #expect("\(error)" == "configuration error: --keep-within: \"9x\" is not a span (use a number and a unit: 90d, 12h, 2w, 6m, 1y)")
        }
    }
}
