import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore

/// Keeps every readable copy's `signed_download_url` signed and fresh: staged copies get one as soon as the
/// archiver's housekeeping sees them, archived objects in a readable class keep theirs, and each is signed again
/// before it expires. A URL lives `lifetime` (S3's limit) or until the credentials that signed it expire, whichever
/// is first: an ECS task role's credentials last hours, so on AWS the URLs are renewed every few hours.
public enum SignedURLRefresh {
    public static let lifetime: Duration = .seconds(7 * 86_400)
    /// A URL with less than this left is signed again, so a reader of the catalog always has that long to use it.
    public static let renewBefore: TimeInterval = 15 * 60
    static let batch = 500
    /// At most this many batches per housekeeping pass: a burst of staged files is signed over a few passes
    /// rather than holding up the archive.
    static let batchesPerPass = 10

    /// Signs what is due; returns how many rows took a new URL. A key that cannot be signed is logged and left
    /// for the next pass.
    public static func run(catalog: SignedURLCatalog, staging: any ObjectStore, archive: any ObjectStore, logger: Logger, now: Date = Date()) async throws -> Int {
        var recorded = 0
        for _ in 0..<batchesPerPass {
            let due = try await catalog.due(before: now.addingTimeInterval(renewBefore), limit: batch)
            var signed: [(due: SignedURLDue, url: PresignedURL)] = []
            for row in due {
                do {
                    let url = try await (row.area == .archive ? archive : staging).presignedGet(row.key, expiresIn: lifetime)
                    signed.append((row, url))
                } catch {
                    logger.warning("could not sign a download URL; tried again at the next sweep", metadata: [
                        "file.id": "\(row.fileID)", "storage.area": "\(row.area.rawValue)", "error": "\(error)"])
                }
            }
            recorded += try await catalog.record(signed)
            // Fewer than a full batch from either half means nothing more is due; a URL that expires within the
            // margin anyway (credentials about to be renewed) comes back next pass rather than in this loop.
            if due.count < batch || signed.allSatisfy({ ($0.url.expires ?? .distantFuture) < now.addingTimeInterval(renewBefore) }) { break }
        }
        return recorded
    }
}
