import Catalog
import Foundation
import PipelineCore

extension RestoreRun {
    /// The selection with `--snapshot`/`--as-of` turned into a snapshot number, or one clear error.
    func resolvedSelection() async throws -> RestoreSelection {
        var selection = configuration.selection
        guard let choice = configuration.snapshot else { return selection }
        guard let label = selection.sourceLabel, let sourceID = try await catalog.snapshots.sourceID(label: label) else {
            throw RestoreError(.invalidRequest, "--snapshot and --as-of need --source with a catalogued source")
        }
        guard let number = try await catalog.snapshots.resolve(choice, sourceID: sourceID) else {
            let asked = switch choice {
            case .number(let number): "no snapshot \(number)"
            case .asOf(let date): "no snapshot finished by \(ISO8601DateFormatter().string(from: date))"
            }
            throw RestoreError(.invalidRequest, "source '\(label)' has \(asked) (uploader snapshots --source '\(label)' lists them)")
        }
        selection.snapshotNumber = number
        return selection
    }
}
