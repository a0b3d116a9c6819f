import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A row whose current copy is readable and whose `signed_download_url` is missing or about to expire.
public struct SignedURLDue: Sendable, Hashable {
    public let fileID: Int64
    public let area: StorageArea
    public let key: String

    public init(fileID: Int64, area: StorageArea, key: String) {
        (self.fileID, self.area, self.key) = (fileID, area, key)
    }
}

/// Keeps `ObjectStorageFiles.signed_download_url` true to its contract: a presigned GET for the current copy while
/// it is readable, staged copies included, else NULL. The archiver signs and records; this finds and writes.
public struct SignedURLCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Staged copies with no URL or one expiring before `before`, and archived objects whose URL (given when they
    /// were archived in a readable class) expires before `before`. Bundle members and classes that need a restore
    /// never had one and are not listed. Each half answered from its partial index (migration 17).
    public func due(before: Date, limit: Int) async throws -> [SignedURLDue] {
        try await CatalogError.wrapping("find signed download URLs to refresh") {
            var due: [SignedURLDue] = []
            let staged = try await client.catalogQuery("""
                SELECT id, storage_key FROM objectstoragefiles
                WHERE storage = 'staging' AND deleted_at IS NULL AND storage_key IS NOT NULL
                  AND (signed_download_url IS NULL OR signed_download_url_expires_at < \(before))
                ORDER BY id LIMIT \(limit)
                """, logger: logger)
            for try await (id, key) in staged.decode((Int64, String).self) {
                due.append(SignedURLDue(fileID: id, area: .staging, key: key))
            }
            let archived = try await client.catalogQuery("""
                SELECT id, storage_key FROM objectstoragefiles
                WHERE storage = 'archive' AND signed_download_url IS NOT NULL AND signed_download_url_expires_at < \(before)
                  AND deleted_at IS NULL AND storage_key IS NOT NULL
                ORDER BY signed_download_url_expires_at LIMIT \(limit)
                """, logger: logger)
            for try await (id, key) in archived.decode((Int64, String).self) {
                due.append(SignedURLDue(fileID: id, area: .archive, key: key))
            }
            return due
        }
    }

    /// Records new URLs, each only if the row still has the copy that was signed (same area and key, not deleted):
    /// a file archived or deleted meanwhile keeps what that change wrote. Returns how many rows took their URL.
    @discardableResult
    public func record(_ signed: [(due: SignedURLDue, url: PresignedURL)]) async throws -> Int {
        try await CatalogError.wrapping("record signed download URLs") {
            guard !signed.isEmpty else { return 0 }
            // Arrays of optionals do not bind; distantPast stands for "does not expire" (a file:// URL).
            let expiries: [Date] = signed.map { $0.url.expires ?? .distantPast }
            let rows = try await client.catalogQuery("""
                UPDATE objectstoragefiles AS f SET
                    signed_download_url = u.url,
                    signed_download_url_expires_at = CASE WHEN u.expires = \(Date.distantPast) THEN NULL ELSE u.expires END
                FROM unnest(\(signed.map(\.due.fileID))::bigint[], \(signed.map(\.due.area.rawValue))::text[],
                            \(signed.map(\.due.key))::text[], \(signed.map(\.url.url))::text[], \(expiries)::timestamptz[])
                         AS u(id, area, key, url, expires)
                WHERE f.id = u.id AND f.storage = u.area AND f.storage_key = u.key AND f.deleted_at IS NULL
                RETURNING f.id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }
}
