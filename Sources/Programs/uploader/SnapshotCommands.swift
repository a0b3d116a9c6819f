import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import PipelineCore
import Restore

/// `uploader snapshots --source L`: each finished run over the source, with what it held and what it changed.
struct SnapshotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "List a source's snapshots: each finished run over it, with its time, files, bytes and what changed.",
        discussion: "restore --snapshot N (or --as-of DATE) brings a source back as one of them was; diff compares two.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "The source.")
    var source: String

    @Flag(help: "One JSON object per line (the default when standard output is not a terminal).")
    var json = false

    func run() async throws {
        let label = source
        let snapshots = try await withArchive(options) { context, handle, _ in
            let catalog = SnapshotCatalog(client: handle, logger: context.logger)
            guard let sourceID = try await catalog.sourceID(label: label) else {
                throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
            }
            return try await catalog.list(sourceID: sourceID)
        }
        for line in Listing.snapshots(snapshots, source: label, style: Listing.Style.choose(json: json)) { print(line) }
    }
}

/// `uploader diff --source L A B`: what changed between two snapshots of a source.
struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what changed between two snapshots of a source: + added, - gone, M changed (with versions).")

    @OptionGroup var options: GlobalOptions

    @Option(help: "The source.")
    var source: String

    @Argument(help: "The older snapshot's number.")
    var older: Int

    @Argument(help: "The newer snapshot's number.")
    var newer: Int

    @Flag(help: "One JSON object per line (the default when standard output is not a terminal).")
    var json = false

    func run() async throws {
        let (label, older, newer) = (source, older, newer)
        let changes = try await withArchive(options) { context, handle, _ in
            let catalog = SnapshotCatalog(client: handle, logger: context.logger)
            guard let sourceID = try await catalog.sourceID(label: label) else {
                throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
            }
            for number in [older, newer] where try await catalog.resolve(.number(number), sourceID: sourceID) == nil {
                throw RestoreError(.invalidRequest, "source '\(label)' has no snapshot \(number) (uploader snapshots --source '\(label)' lists them)")
            }
            return try await catalog.difference(sourceID: sourceID, older: older, newer: newer)
        }
        for line in Listing.difference(changes, older: older, newer: newer, style: Listing.Style.choose(json: json)) { print(line) }
    }
}

/// `--snapshot N` or `--as-of DATE` of `uploader restore`.
struct SnapshotOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Restore the source as snapshot N recorded it (uploader snapshots lists them).", valueName: "n"))
    var snapshot: Int?

    @Option(name: .customLong("as-of"), help: ArgumentHelp(
        "Restore the source as it was at this time: the last snapshot finished by then (YYYY-MM-DD means the end of that day, local time; or an ISO 8601 time).",
        valueName: "date"))
    var asOf: String?

    func validate() throws {
        if snapshot != nil && asOf != nil { throw ValidationError("give --snapshot or --as-of, not both") }
        if let snapshot, snapshot < 1 { throw ValidationError("--snapshot counts from 1") }
        if let asOf, Self.parse(asOf) == nil { throw ValidationError("--as-of \"\(asOf)\": not a date (use 2026-03-01 or 2026-03-01T18:00:00Z)") }
    }

    var choice: SnapshotChoice? {
        if let snapshot { return .number(snapshot) }
        return asOf.flatMap(Self.parse).map { .asOf($0) }
    }

    /// A day means its end in local time (the tree as it was that day); a full time is taken as it is.
    static func parse(_ text: String) -> Date? {
        if let time = ISO8601DateFormatter().date(from: text) { return time }
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.dateFormat = "yyyy-MM-dd"
        day.timeZone = .current
        guard let start = day.date(from: text) else { return nil }
        return Calendar.current.date(byAdding: DateComponents(day: 1, second: -1), to: start)
    }
}
