import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO

/// Staging objects nothing will ever name, left by a killed uploader.
extension ArchiveHandler {
    /// Removes disc image maps (`sources/…/<image key>.map`) that an `uploader image` killed after storing the map
    /// and before writing the image's row left in staging: no row names them, and none ever will (a new run of a
    /// small image writes a new key; a large one's pending upload keeps its map, below). Returns how many went.
    ///
    /// Safe beside running uploaders because only maps older than `configuration.leftoverAge` (an hour) count: an
    /// uploader writes the map after the image is complete and the row moments later, so a map that old with no row
    /// is not about to get one. A map stays while anything names it (``LeftoverCatalog/referencedImageMaps(among:)``):
    /// a row in any state, a queued delete, or the pending upload of its image, whose next run rewrites the map before
    /// it writes the row (removing it under that run could leave a row naming a map that is gone). Its time is
    /// checked again just before it is removed. Maps in a spool are the sender's to sweep (`SpoolSender.sweepOrphans`).
    func removeOrphanedImageMaps(client: PostgresClient, logger: Logger) async throws -> Int {
        let age = configuration.leftoverAge
        let cutoff = Date().addingTimeInterval(-(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18))
        var old: [String] = []
        for try await object in staging.listAll(prefix: "sources/")
        where object.key.hasSuffix(".map") && (object.lastModified ?? .distantFuture) < cutoff {
            old.append(object.key)
        }
        var removed = 0
        let catalog = LeftoverCatalog(client: client, logger: logger)
        for start in stride(from: 0, to: old.count, by: 500) {
            let batch = Array(old[start..<min(start + 500, old.count)])
            let referenced = try await catalog.referencedImageMaps(among: batch)
            for key in batch where !referenced.contains(key) {
                guard let info = try await staging.head(key), (info.lastModified ?? .distantFuture) < cutoff else { continue }
                try await staging.delete(key)
                logger.notice("removed a disc image map no row names (left by an uploader killed before it wrote the image's row)",
                              metadata: ["staging.key": "\(key)"])
                removed += 1
            }
        }
        return removed
    }
}
