import Foundation
import PostgresNIO

extension TranscodeCatalog {
    /// A source that keeps raw videos: the raw row goes on to the archiver unchanged (`transcoded`, its own key and
    /// hash, `details.raw_kept_by_policy` and `details.transcode_file_id`; not `kept_raw`, which lists problems for
    /// a person to look at), and the verified transcode becomes a row of its own beside it: same source, path `<raw path>.<ext>`, `regular`, `staged` with the transcode's key, size and
    /// hash, `details.transcode_of` naming the raw row. One transaction, fenced by the raw row's lease, so a worker
    /// that lost its lease adds nothing. Returns the new row's id, or nil when the lease was lost.
    public func recordTranscodeBeside(
        _ item: TranscodeItem, workerID: UUID, resultKey: String, resultSize: Int64, resultHash: String, fileExtension: String,
        transcodeDetailsJSON: String
    ) async throws -> Int64? {
        let companionPath = item.path + "." + fileExtension
        let companionName = item.name + "." + fileExtension
        let rawDetails = String(decoding: try JSONSerialization.data(withJSONObject: [
            "raw_kept_by_policy": "the source keeps raw videos (--keep-raw); the transcode is archived beside it as \(companionPath)",
        ], options: [.sortedKeys]), as: UTF8.self)
        return try await CatalogError.wrapping("record the transcode beside its raw video") {
            try await client.withTransaction(logger: logger) { connection in
                var held = false
                for try await _ in try await connection.query("""
                    UPDATE objectstoragefiles SET
                        state = 'transcoded', storage = 'staging', stored_size_bytes = NULL, stored_hash = NULL,
                        details = details || \(rawDetails)::jsonb,
                        error = NULL, lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL, run_after = now()
                    WHERE id = \(item.job.fileID) AND lease_owner = \(workerID) AND lease_token = \(item.job.leaseToken)
                    RETURNING id
                    """, logger: logger).decode(Int64.self) {
                    held = true
                }
                guard held else { return nil }
                // A later version when the path is taken (a file of that name on the disc, or an earlier transcode).
                let inserted = try await connection.query("""
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, version, size_bytes, hash, modified_at, state, storage,
                                                    storage_key, details)
                    SELECT f.source_id, \(companionName), \(companionPath), 'regular',
                           coalesce((SELECT max(o.version) FROM objectstoragefiles o WHERE o.source_id = f.source_id AND o.path = \(companionPath)), 0) + 1,
                           \(resultSize), \(resultHash), f.modified_at, 'staged', 'staging', \(resultKey),
                           jsonb_build_object('transcode_of', f.id) || \(transcodeDetailsJSON)::jsonb
                    FROM objectstoragefiles f WHERE f.id = \(item.job.fileID)
                    RETURNING id
                    """, logger: logger)
                var companionID: Int64?
                for try await id in inserted.decode(Int64.self) { companionID = id }
                guard let companionID else { throw CatalogError(.queryFailed, "catalog: the transcode row for file \(item.job.fileID) was not created") }
                _ = try await connection.query("""
                    UPDATE objectstoragefiles SET details = details || jsonb_build_object('transcode_file_id', \(companionID)::bigint)
                    WHERE id = \(item.job.fileID)
                    """, logger: logger)
                return companionID
            }
        }
    }
}
