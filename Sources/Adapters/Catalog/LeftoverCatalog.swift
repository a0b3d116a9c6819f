import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What the archiver's sweep of staging leftovers asks: which of the objects it found something still names.
public struct LeftoverCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Of these disc image maps (`<image key>.map`), the ones that must stay: a row names the map (its
    /// `details.rescue_map_key`, in any state and any spool) or holds its image (`storage_key`), a queued staging
    /// delete names it (that delete removes it), or a pending upload is the image's (an interrupted `uploader image`
    /// that its next run resumes: it writes the map again and then the row). Every branch is one index scan for the
    /// whole list (migration 21's index on the map key, migration 4's on `storage_key`, the queued deletes' and the
    /// pending uploads' keys).
    public func referencedImageMaps(among keys: [String]) async throws -> Set<String> {
        try await CatalogError.wrapping("look up image maps in staging") {
            guard !keys.isEmpty else { return [] }
            let images = keys.map { String($0.dropLast(".map".count)) }
            let rows = try await client.catalogQuery("""
                SELECT f.details->>'rescue_map_key' FROM objectstoragefiles f WHERE f.details->>'rescue_map_key' = ANY(\(keys)::text[])
                UNION
                SELECT f.storage_key || '.map' FROM objectstoragefiles f WHERE f.storage_key = ANY(\(images)::text[])
                UNION
                SELECT d.storage_key FROM pending_object_deletes d WHERE d.area = 'staging' AND d.storage_key = ANY(\(keys)::text[])
                UNION
                SELECT p.staging_key || '.map' FROM pending_uploads p WHERE p.staging_key = ANY(\(images)::text[])
                """, logger: logger)
            var found = Set<String>()
            for try await key in rows.decode(String.self) { found.insert(key) }
            return found
        }
    }
}
