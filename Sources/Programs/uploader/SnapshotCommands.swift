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

/// `uploader forget --source L --keep-…`: restic's retention policy over a source's snapshots.
struct ForgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Forget a source's old snapshots by a retention policy and release the versions only they held.",
        discussion: """
            A snapshot is kept when any rule keeps it, and the newest always is. Released versions go through \
            ObjectStorageDeleteLog: the archiver deletes them after its grace period, and a version a kept snapshot \
            needs is never released. --dry-run lists what would go and changes nothing.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "The source.")
    var source: String

    @Option(help: ArgumentHelp("Keep the newest N snapshots.", valueName: "n"))
    var keepLast: Int?

    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the last N days that have one.", valueName: "n"))
    var keepDaily: Int?

    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the last N weeks (ISO 8601) that have one.", valueName: "n"))
    var keepWeekly: Int?

    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the last N months that have one.", valueName: "n"))
    var keepMonthly: Int?

    @Option(help: ArgumentHelp("Keep every snapshot within this span of the newest (90d, 12h, 2w, 6m, 1y, 1y6m).", valueName: "span"))
    var keepWithin: String?

    @Flag(help: "List what would be forgotten and released; change nothing.")
    var dryRun = false

    @Flag(help: "One JSON object per line (the default when standard output is not a terminal).")
    var json = false

    func validate() throws {
        for (name, value) in [("--keep-last", keepLast), ("--keep-daily", keepDaily), ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1") }
        }
        if let keepWithin {
            do { _ = try RetentionPolicy.parseSpan(keepWithin) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() async throws {
        let policy = RetentionPolicy(
            keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly,
            keepWithin: try keepWithin.map(RetentionPolicy.parseSpan))
        let (label, dryRun) = (source, dryRun)
        let report = try await withArchive(options) { context, handle, _ in
            try await ForgetRun(catalog: SnapshotCatalog(client: handle, logger: context.logger), policy: policy).run(source: label, dryRun: dryRun)
        }
        switch Listing.Style.choose(json: json) {
        case .table:
            for line in report.summaryLines { print(line) }
        case .jsonLines:
            for decision in report.decisions {
                print(Listing.jsonLine(["event": "snapshot", "snapshot": decision.snapshot.number, "keep": !decision.keptBy.isEmpty, "reasons": decision.keptBy]))
            }
            for version in report.released {
                print(Listing.jsonLine(["event": "release", "file_id": version.fileID, "path": version.path, "version": version.version, "size": version.size]))
            }
            print(Listing.jsonLine([
                "event": "summary", "dry_run": dryRun, "forgotten": report.forgotten, "released": report.released.count,
                "released_bytes": report.released.reduce(Int64(0)) { $0 + $1.size },
            ]))
        }
    }
}
