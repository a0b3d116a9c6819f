import Catalog
import PipelineCore

public enum SourceTierErrorCode: Sendable, Hashable {
    /// `--tier` asks for another tier than the one the source's files are stored in.
    case mismatch
}

/// The command's `--tier` and the source disagree: nothing was read or sent.
public typealias SourceTierError = CodedError<SourceTierErrorCode>

extension UploadRun {
    /// A source's tier is fixed once it holds files: a later `--tier` that differs is refused before anything is
    /// touched, rather than applied to new files only, so that a source never has files in both tiers (what the
    /// status page, the cost estimate and a user expect of a restore of the source stays one answer). Without
    /// `--tier` the source keeps its tier, as `--keep-raw` stays on.
    func checkTier() async throws {
        guard let requested = configuration.tier,
              let recorded = try await catalog.tierOfSource(label: configuration.label),
              recorded.holdsFiles, recorded.tier != requested
        else { return }
        throw SourceTierError(.mismatch, "source '\(configuration.label)' is \(recorded.tier): its files are stored in that tier and a source "
            + "keeps its tier; leave out --tier to add to it, or use a new --label for \(requested) files (nothing was uploaded)")
    }
}
