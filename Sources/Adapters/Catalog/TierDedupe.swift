/// Dedupe across tiers. A warm source promises that each of its files reads back at once, so its content may only
/// be held by a row of a warm source (stored in the warm class); a cold file may be a duplicate of either, since
/// content in the warm class is at least as safe and readable. So the same content can be archived twice, once
/// per tier, and never more.
enum TierDedupe {
    /// SQL: the source `sourceID` (an SQL expression) is warm.
    static func isWarm(_ sourceID: String) -> String {
        "EXISTS (SELECT 1 FROM sources tw WHERE tw.id = \(sourceID) AND tw.tier = 'warm')"
    }

    /// SQL: a row of `holderSource` may hold the content of a file of `fileSource` (both SQL expressions).
    static func holderFits(holderSource: String, fileSource: String) -> String {
        "(NOT \(isWarm(fileSource)) OR \(isWarm(holderSource)))"
    }
}
