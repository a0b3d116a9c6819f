import Catalog
import Foundation
import SourceReading

/// What became of one file handed to ``UploadRun/storeOneFile(at:path:size:modifiedAt:sourceID:)``.
public struct OneFileOutcome: Sendable, Hashable {
    /// `staged` (its bytes are in staging now), `duplicate` (its content was stored already), `unchanged` (the path
    /// holds this content already) or `unreadable` (the server could not read its own copy: the row says why).
    public let outcome: String
    /// The path's newest row in the catalog.
    public let fileID: Int64?
}

extension UploadRun {
    /// Stores one file that is already on this machine (the status server's finished browser upload) at `path` in
    /// the open source `sourceID`, exactly as `run` stores each file it walks: the same look-up (a path with this
    /// size and time is unchanged), the same classification, SHA-256 and dedupe (hashed first when content of this
    /// size exists), the same versions, the same resumable multipart upload into staging (a `pending_uploads` row
    /// above the multipart threshold), and the row only once the bytes are safe. The caller opens and finishes the
    /// source (a browser run spans many requests: `BrowserUploadCatalog`). A source encrypted on its uploader's
    /// machine is refused: the server holds no key, and its hashes would not match.
    public func storeOneFile(at absolutePath: String, path: String, size: Int64, modifiedAt: Date, sourceID: Int64) async throws -> OneFileOutcome {
        guard try await catalog.claimEncryption(sourceID: sourceID, proposed: nil).record == nil else {
            throw IngestError(.archiveFailed, path: path, "the source is encrypted: only the uploader that holds its key can add files")
        }
        let file = SourceFile.standIn(
            relativePath: RawPath(path), absolutePath: RawPath(absolutePath), size: size, modificationTime: Self.catalogPrecision(modifiedAt))
        let outcome = try await ingest(file, sourceID: sourceID, gate: SameSizeGate(), readers: ReadSlots(count: 1))
        let text: String
        switch outcome {
        case .staged: text = catalog.spoolID == nil ? "staged" : "spooled"
        case .duplicate: text = "duplicate"
        case .unchanged, .checkedUnchanged: text = "unchanged"
        case .unreadable: text = "unreadable"
        case .suspectedBitRot, .planned: text = "unchanged"  // not produced here: no --check-unchanged, no dry run
        }
        var row = recordedRows.rowID(for: path)
        if row == nil { row = try await catalog.latestVersion(sourceID: sourceID, path: path)?.id }
        return OneFileOutcome(outcome: text, fileID: row)
    }
}
