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
