import Foundation

/// Which snapshots of a source to keep, in restic's `forget` terms: the newest N; the newest of each of the last N
/// days, weeks or months that have snapshots; everything within a span before the newest snapshot. A snapshot kept
/// by any rule is kept; the newest is always kept (it is what the source holds now).
public struct RetentionPolicy: Sendable, Hashable {
    public var keepLast: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?
    public var keepWithin: Duration?

    public init(keepLast: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil, keepMonthly: Int? = nil, keepWithin: Duration? = nil) {
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepWithin = keepWithin
    }

    public var isEmpty: Bool { keepLast == nil && keepDaily == nil && keepWeekly == nil && keepMonthly == nil && keepWithin == nil }

    /// One snapshot as the policy sees it.
    public struct Snapshot: Sendable, Hashable {
        public let number: Int
        public let time: Date
        public init(number: Int, time: Date) {
            self.number = number
            self.time = time
        }
    }

    /// The numbers kept, each with the rules that keep it ("last", "daily", "weekly", "monthly", "within", "newest").
    /// Days, weeks (ISO 8601) and months are read in `calendar`'s time zone.
    public func keep(_ snapshots: [Snapshot], calendar: Calendar) -> [Int: [String]] {
        let newestFirst = snapshots.sorted { ($0.time, $0.number) > ($1.time, $1.number) }
        var reasons: [Int: [String]] = [:]
        guard let newest = newestFirst.first else { return reasons }
        reasons[newest.number, default: []].append("newest")
        if let keepLast {
            for snapshot in newestFirst.prefix(keepLast) { reasons[snapshot.number, default: []].append("last") }
        }
        var isoCalendar = Calendar(identifier: .iso8601)
        isoCalendar.timeZone = calendar.timeZone
        let buckets: [(String, Int?, (Date) -> [Int])] = [
            ("daily", keepDaily, { date in let c = calendar.dateComponents([.year, .month, .day], from: date); return [c.year ?? 0, c.month ?? 0, c.day ?? 0] }),
            ("weekly", keepWeekly, { date in let c = isoCalendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date); return [c.yearForWeekOfYear ?? 0, c.weekOfYear ?? 0] }),
            ("monthly", keepMonthly, { date in let c = calendar.dateComponents([.year, .month], from: date); return [c.year ?? 0, c.month ?? 0] }),
        ]
        for (name, count, bucket) in buckets {
            guard let count, count > 0 else { continue }
            // The newest snapshot of each of the newest `count` buckets that have one.
            var seen: [[Int]] = []
            for snapshot in newestFirst {
                let key = bucket(snapshot.time)
                guard !seen.contains(key) else { continue }
                seen.append(key)
                reasons[snapshot.number, default: []].append(name)
                if seen.count == count { break }
            }
        }
        if let keepWithin {
            let limit = newest.time.addingTimeInterval(-Double(keepWithin.components.seconds))
            for snapshot in newestFirst where snapshot.time >= limit { reasons[snapshot.number, default: []].append("within") }
        }
        return reasons
    }

    /// `90d`, `12h`, `2w`, `6m` (30 days), `1y` (365 days), or a combination (`1y6m`), as restic reads `--keep-within`.
    public static func parseSpan(_ text: String) throws -> Duration {
        let units: [Character: Int64] = ["h": 3600, "d": 86_400, "w": 7 * 86_400, "m": 30 * 86_400, "y": 365 * 86_400]
        var total: Int64 = 0, number = "", sawUnit = false
        for character in text {
            if character.isASCII, character.isNumber {
                number.append(character)
            } else if let unit = units[character], let value = Int64(number) {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                throw ConfigurationError(setting: "--keep-within", problem: "\"\(text)\" is not a span (use a number and a unit: 90d, 12h, 2w, 6m, 1y)")
            }
        }
        guard number.isEmpty, sawUnit, total > 0 else {
            throw ConfigurationError(setting: "--keep-within", problem: "\"\(text)\" is not a span (use a number and a unit: 90d, 12h, 2w, 6m, 1y)")
        }
        return .seconds(total)
    }
}
