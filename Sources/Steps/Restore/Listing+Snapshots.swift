import Catalog
import Foundation
import PipelineCore

extension Listing {
    /// `uploader snapshots`: one row per finished run over the source.
    public static func snapshots(_ snapshots: [SnapshotSummary], source: String, style: Style) -> [String] {
        switch style {
        case .jsonLines:
            return snapshots.map { snapshot in
                jsonLine([
                    "source": source, "snapshot": snapshot.number, "started_at": RestoreReport.dateText(snapshot.startedAt),
                    "finished_at": RestoreReport.dateText(snapshot.finishedAt), "complete": snapshot.complete, "files": snapshot.files,
                    "bytes": snapshot.bytes, "files_changed": snapshot.filesChanged, "files_gone": snapshot.filesGone,
                    "bytes_uploaded": snapshot.bytesUploaded,
                ])
            }
        case .table:
            return table(["#", "finished", "files", "size", "changed", "gone", "uploaded", ""], snapshots.map { snapshot in
                [String(snapshot.number), RestoreReport.dateText(snapshot.finishedAt), String(snapshot.files), Format.bytes(snapshot.bytes),
                 String(snapshot.filesChanged), String(snapshot.filesGone), Format.bytes(snapshot.bytesUploaded),
                 snapshot.complete ? "" : "incomplete: what it could not read is kept as it was"]
            })
        }
    }

    /// `uploader diff`: `+` added, `-` gone, `M` changed, with the versions.
    public static func difference(_ changes: [SnapshotDifference], older: Int, newer: Int, style: Style) -> [String] {
        switch style {
        case .jsonLines:
            return changes.map { change in
                jsonLine(["change": change.change.rawValue, "path": change.path, "before": change.before ?? NSNull(), "after": change.after ?? NSNull()])
            }
        case .table:
            let count = { (kind: SnapshotDifference.Change) in changes.filter { $0.change == kind }.count }
            return changes.map { change in
                "\(change.change.rawValue) \(change.path)" + (change.change == .modified ? "  (v\(change.before ?? 0) → v\(change.after ?? 0))" : "")
            } + ["\(count(.added)) added, \(count(.removed)) gone, \(count(.modified)) changed between snapshot \(older) and \(newer)"]
        }
    }
}
