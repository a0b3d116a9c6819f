import Foundation
import Logging
import PostgresNIO

/// An archive object a browser restore still needs in its cache.
public struct BrowserRestoreObject: Sendable, Hashable {
    public let restoreID: Int64
    public let archiveKey: String
    public let tier: String
    public let days: Int
    public let storedBytes: Int64?
    public let storedSHA256: String?
    /// none, zstd or gzip: a compressed bundle is cached unpacked, so members can be read by their tar offsets.
    public let compression: String
    public let storageClass: String?

    /// Where the plain copy goes in staging.
    public var cacheKey: String { "cache/restore-\(restoreID)/\(archiveKey)" }
}

/// The archiver's side of browser restores (see `CatalogSchema.browserRestores`): which objects to restore and
/// cache, recording the copies, and ending restores whose days are over.
public struct BrowserRestoreCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Objects of restores still restoring that have no cached copy yet, oldest restore first.
    public func objectsToCache(limit: Int = 200) async throws -> [BrowserRestoreObject] {
        try await CatalogError.wrapping("list objects to restore for the browser") {
            var objects: [BrowserRestoreObject] = []
            for try await row in try await client.catalogQuery("""
                SELECT o.restore_id, o.archive_key, r.tier, r.days, o.stored_bytes, o.stored_sha256, o.compression, o.storage_class
                FROM browser_restores r JOIN browser_restore_objects o ON o.restore_id = r.id
                WHERE r.state = 'restoring' AND o.cache_key IS NULL
                ORDER BY r.id, o.archive_key LIMIT \(limit)
                """, logger: logger).decode((Int64, String, String, Int32, Int64?, String?, String, String?).self) {
                objects.append(BrowserRestoreObject(
                    restoreID: row.0, archiveKey: row.1, tier: row.2, days: Int(row.3), storedBytes: row.4, storedSHA256: row.5,
                    compression: row.6, storageClass: row.7))
            }
            return objects
        }
    }

    /// Records the cached copy of `object`, if its restore is still restoring (its row is locked, so an "uncache"
    /// at the same moment either comes first, and this returns false and the caller removes its copy, or after, and
    /// sees the key to remove).
    public func recordCached(_ object: BrowserRestoreObject) async throws -> Bool {
        try await CatalogError.wrapping("record a restored copy") {
            var recorded = false
            for try await _ in try await client.catalogQuery("""
                WITH r AS (SELECT id FROM browser_restores WHERE id = \(object.restoreID) AND state = 'restoring' FOR UPDATE)
                UPDATE browser_restore_objects SET cache_key = \(object.cacheKey), cached_at = now()
                WHERE restore_id IN (SELECT id FROM r) AND archive_key = \(object.archiveKey)
                RETURNING restore_id
                """, logger: logger).decode(Int64.self) { recorded = true }
            return recorded
        }
    }

    /// Restores whose every object is cached become ready, cached for their days from now. Returns their ids.
    public func finishReady() async throws -> [Int64] {
        try await CatalogError.wrapping("mark restores ready") {
            var ids: [Int64] = []
            for try await id in try await client.catalogQuery("""
                UPDATE browser_restores r SET state = 'ready', ready_at = now(), cached_until = now() + make_interval(days => r.days)
                WHERE r.state = 'restoring'
                  AND NOT EXISTS (SELECT 1 FROM browser_restore_objects o WHERE o.restore_id = r.id AND o.cache_key IS NULL)
                RETURNING r.id
                """, logger: logger).decode(Int64.self) { ids.append(id) }
            return ids
        }
    }

    /// Restore `id` cannot finish: the reason is shown on its page; its copies are removed by the sweep.
    public func fail(restoreID id: Int64, error: String) async throws {
        try await CatalogError.wrapping("record a failed restore") {
            _ = try await client.catalogQuery("""
                UPDATE browser_restores SET state = 'failed', ended_at = now(), error = \(error) WHERE id = \(id) AND state = 'restoring'
                """, logger: logger)
        }
    }

    /// Ready restores whose days are over end as expired.
    public func expire() async throws -> [Int64] {
        try await CatalogError.wrapping("expire restores") {
            var ids: [Int64] = []
            for try await id in try await client.catalogQuery("""
                UPDATE browser_restores SET state = 'expired', ended_at = now() WHERE state = 'ready' AND cached_until <= now() RETURNING id
                """, logger: logger).decode(Int64.self) { ids.append(id) }
            return ids
        }
    }

    /// Cached copies of restores that ended (uncached, expired, failed): to delete.
    public func copiesToRemove(limit: Int = 500) async throws -> [String] {
        try await CatalogError.wrapping("list restored copies to remove") {
            var keys: [String] = []
            for try await key in try await client.catalogQuery("""
                SELECT o.cache_key FROM browser_restore_objects o JOIN browser_restores r ON r.id = o.restore_id
                WHERE o.cache_key IS NOT NULL AND r.state IN ('uncached', 'expired', 'failed') LIMIT \(limit)
                """, logger: logger).decode(String.self) { keys.append(key) }
            return keys
        }
    }

    /// The copies `keys` were deleted.
    public func copiesRemoved(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await CatalogError.wrapping("record removed restored copies") {
            _ = try await client.catalogQuery("UPDATE browser_restore_objects SET cache_key = NULL WHERE cache_key = ANY(\(keys)::text[])", logger: logger)
        }
    }
}
