import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A claimed video with what the transcoder needs to know about it.
public struct TranscodeItem: Sendable {
    public let job: ClaimedFile
    public let sourceLabel: String
    public let name: String
    public let path: String
    public let modifiedAt: Date?
    public let stagingKey: String?
    public let sizeBytes: Int64
    public let hash: String
    /// The source keeps raw videos (`--keep-raw`): the transcode goes beside the raw file, not in its place.
    public let keepRaw: Bool
}

/// The transcoder's queries; every change to a claimed row is guarded by the lease owner and fencing token.
public struct TranscodeCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func load(_ job: ClaimedFile) async throws -> TranscodeItem? {
        try await CatalogError.wrapping("load the video to transcode") {
            let rows = try await client.catalogQuery("""
                SELECT s.label, f.name, f.path, f.modified_at, f.storage_key, f.size_bytes, f.hash, s.keep_raw
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id WHERE f.id = \(job.fileID)
                """, logger: logger)
            for try await row in rows.decode((String, String, String, Date?, String?, Int64, String, Bool).self) {
                return TranscodeItem(
                    job: job, sourceLabel: row.0, name: row.1, path: row.2, modifiedAt: row.3, stagingKey: row.4, sizeBytes: row.5, hash: row.6,
                    keepRaw: row.7)
            }
            return nil
        }
    }

    /// The video is ready for the archiver: `transcoded`, with the object to archive (the transcoder's output, or
    /// the raw file when it could not be converted), its size and SHA-256, and what was done in `details`. The raw
    /// staging copy, when replaced, is queued for removal in the same transaction.
    public func recordTranscoded(
        _ item: TranscodeItem, workerID: UUID, resultKey: String, resultSize: Int64, resultHash: String, detailsJSON: String
    ) async throws -> Bool {
        try await CatalogError.wrapping("record the transcoded video") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var updated = false
                for try await _ in try await connection.query("""
                    UPDATE objectstoragefiles SET
                        state = 'transcoded', storage = 'staging', storage_key = \(resultKey),
                        stored_size_bytes = \(resultSize), stored_hash = \(resultHash), details = details || \(detailsJSON)::jsonb,
                        error = NULL, lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL, run_after = now()
                    WHERE id = \(item.job.fileID) AND lease_owner = \(workerID) AND lease_token = \(item.job.leaseToken)
                    RETURNING id
                    """, logger: logger).decode(Int64.self) {
                    updated = true
                }
                if updated, let raw = item.stagingKey, raw != resultKey {
                    _ = try await connection.query("""
                        INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
                        VALUES ('staging', \(raw), \(item.job.fileID), 'replaced by its transcode') ON CONFLICT DO NOTHING
                        """, logger: logger)
                }
                return updated
            }
        }
    }

    /// Not a video after all (the uploader guessed from the name or a few bytes): the row becomes `regular` and
    /// goes straight to the archiver, its bytes untouched.
    public func reclassifyAsRegular(_ item: TranscodeItem, workerID: UUID, reason: String) async throws -> Bool {
        try await CatalogError.wrapping("reclassify the file as regular") {
            let details = String(decoding: try JSONSerialization.data(withJSONObject: ["reclassified": reason], options: [.sortedKeys]), as: UTF8.self)
            var updated = false
            for try await _ in try await client.catalogQuery("""
                UPDATE objectstoragefiles SET
                    kind = 'regular', state = 'staged', details = details || \(details)::jsonb, run_after = now(),
                    lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL, attempts = 0
                WHERE id = \(item.job.fileID) AND lease_owner = \(workerID) AND lease_token = \(item.job.leaseToken)
                RETURNING id
                """, logger: logger).decode(Int64.self) {
                updated = true
            }
            return updated
        }
    }

    public func finishDelete(_ key: String) async throws {
        try await CatalogError.wrapping("finish the staging delete") {
            _ = try await client.catalogQuery("DELETE FROM pending_object_deletes WHERE area = 'staging' AND storage_key = \(key)", logger: logger)
        }
    }
}
