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
