import Catalog
import Foundation
import PipelineCore

/// `uploader forget`: applies a retention policy to a source's snapshots. Forgotten snapshots disappear from
/// `snapshots` and `restore --snapshot`; the versions only they held are released through
/// `ObjectStorageDeleteLog`, so the archiver's delete processor removes them after its grace period (and hands
/// content still used elsewhere over, as for any delete). Kept snapshots restore exactly as before.
public struct ForgetRun: Sendable {
    public struct Report: Sendable {
        public var source: String
        /// Every snapshot with the rules that keep it (empty: forgotten).
        public var decisions: [(snapshot: SnapshotSummary, keptBy: [String])] = []
        public var released: [ReleasedVersion] = []
        public var dryRun: Bool

        public var forgotten: [Int] { decisions.filter { $0.keptBy.isEmpty }.map(\.snapshot.number) }

        public var summaryLines: [String] {
            var lines = decisions.map { decision in
                decision.keptBy.isEmpty
                    ? "forget snapshot \(decision.snapshot.number) (\(RestoreReport.dateText(decision.snapshot.finishedAt)))"
                    : "keep   snapshot \(decision.snapshot.number) (\(RestoreReport.dateText(decision.snapshot.finishedAt))): \(decision.keptBy.joined(separator: ", "))"
            }
            lines += released.map { "release \($0.path) v\($0.version) (\(Format.bytes($0.size)))" }
            let bytes = released.reduce(Int64(0)) { $0 + $1.size }
            lines.append((dryRun ? "dry run: would forget " : "forgot ") + "\(forgotten.count) snapshot\(forgotten.count == 1 ? "" : "s") of '\(source)' and "
                + (dryRun ? "release " : "released ") + "\(released.count) version\(released.count == 1 ? "" : "s") (\(Format.bytes(bytes)))"
                + (dryRun || released.isEmpty ? "" : "; the archiver deletes them after its grace period (archiver run --delete-grace-days)"))
            return lines
        }
    }

    let catalog: SnapshotCatalog
    let policy: RetentionPolicy
    let calendar: Calendar

    public init(catalog: SnapshotCatalog, policy: RetentionPolicy, calendar: Calendar = .current) {
        self.catalog = catalog
        self.policy = policy
        self.calendar = calendar
    }

    public func run(source label: String, dryRun: Bool) async throws -> Report {
        guard !policy.isEmpty else {
            throw RestoreError(.invalidRequest, "say what to keep: --keep-last, --keep-daily, --keep-weekly, --keep-monthly or --keep-within")
        }
        guard let sourceID = try await catalog.sourceID(label: label) else {
            throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
        }
        let snapshots = try await catalog.list(sourceID: sourceID)
        let kept = policy.keep(snapshots.map { RetentionPolicy.Snapshot(number: $0.number, time: $0.finishedAt) }, calendar: calendar)
        var report = Report(source: label, dryRun: dryRun)
        report.decisions = snapshots.map { ($0, kept[$0.number] ?? []) }
        if !report.forgotten.isEmpty {
            report.released = try await catalog.forget(sourceID: sourceID, numbers: report.forgotten, dryRun: dryRun)
        }
        return report
    }
}
