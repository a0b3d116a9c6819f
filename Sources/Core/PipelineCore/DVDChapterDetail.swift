import Foundation

/// How a DVD title set's chapters travel from the uploader (which reads the IFO) to the transcoder (which marks
/// them in the title's transcode): `details.dvd_chapters` on the IFO's row, start times in seconds, "0.000,1.800".
public enum DVDChapterDetail {
    public static let key = "dvd_chapters"

    public static func text(_ starts: [Double]) -> String {
        starts.map { String(format: "%.3f", $0) }.joined(separator: ",")
    }

    /// The start times, or nil for anything malformed.
    public static func starts(_ text: String) -> [Double]? {
        let values = text.split(separator: ",").map { Double($0) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return values.compactMap { $0 }
    }
}

/// The cells of a DVD title set in play order, when that is not the order of its sectors: `details.dvd_cells` on
/// the IFO's row, "first-last" sector ranges, "300-599,0-299". Absent, the parts play in file order.
public enum DVDCellOrderDetail {
    public static let key = "dvd_cells"

    public static func text(_ ranges: [ClosedRange<UInt32>]) -> String {
        ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }

    /// The ranges, or nil for anything malformed.
    public static func ranges(_ text: String) -> [ClosedRange<UInt32>]? {
        var ranges: [ClosedRange<UInt32>] = []
        for item in text.split(separator: ",") {
            let bounds = item.split(separator: "-").compactMap { UInt32($0) }
            guard bounds.count == 2, bounds[0] <= bounds[1] else { return nil }
            ranges.append(bounds[0]...bounds[1])
        }
        return ranges.isEmpty ? nil : ranges
    }
}

/// The titles of a DVD title set that holds more than one (DVD recorders write each recording as a title of one
/// set): `details.dvd_titles` on the IFO's row. A title is a program chain of the set's VTS_PGCIT that has cells,
/// numbered by its place in that table; its cells in play order (a cell several chains share is in each of them)
/// and its chapter starts, as `dvd_cells` and `dvd_chapters` spell them, one title per ";":
/// "1:0-28,29-107@0.000,1.200;2:108-252,0-107@0.000,4.000". Absent, the set is one transcode.
public enum DVDTitlesDetail {
    public static let key = "dvd_titles"

    public struct Title: Sendable, Hashable {
        /// The program chain's number in the title set (1-based, the order of VTS_PGCIT).
        public var number: Int
        /// Sector ranges counted from the start of part 1, in play order.
        public var cells: [ClosedRange<UInt32>]
        /// Seconds from the title's start (sorted, the first at 0).
        public var chapterStarts: [Double]

        public init(number: Int, cells: [ClosedRange<UInt32>], chapterStarts: [Double]) {
            self.number = number
            self.cells = cells
            self.chapterStarts = chapterStarts
        }
    }

    public static func text(_ titles: [Title]) -> String {
        titles.map { "\($0.number):\(DVDCellOrderDetail.text($0.cells))@\(DVDChapterDetail.text($0.chapterStarts))" }.joined(separator: ";")
    }

    /// The titles, or nil for anything malformed (no title, a number twice, a title without cells).
    public static func titles(_ text: String) -> [Title]? {
        var titles: [Title] = []
        for item in text.split(separator: ";") {
            let numbered = item.split(separator: ":", maxSplits: 1)
            guard numbered.count == 2, let number = Int(numbered[0]), number > 0, !titles.contains(where: { $0.number == number }) else { return nil }
            let fields = numbered[1].split(separator: "@", omittingEmptySubsequences: false)
            guard fields.count == 2, let cells = DVDCellOrderDetail.ranges(String(fields[0])),
                  let starts = DVDChapterDetail.starts(String(fields[1])) else { return nil }
            titles.append(Title(number: number, cells: cells, chapterStarts: starts))
        }
        return titles.isEmpty ? nil : titles
    }
}
