import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What processing one delete request did.
public struct ProcessedDelete: Sendable, Hashable {
    public let logID: Int64
    public let fileID: Int64
    public let outcome: String
}

/// Carries out `ObjectStorageDeleteLog` requests after their grace period.
///
/// A file's content may go only when the file that holds it is deleted and no live file is a duplicate of it; a
/// deleted holder that live files still use hands its content over to the first of them, so a deleted row never
/// holds content anyone needs.
/// Objects are never removed inside the transaction: it queues them in `pending_object_deletes`, which the
/// archiver's sweep empties. For a file inside a bundle, its bytes become dead bytes of the bundle; a bundle
/// whose members are all dead is removed, and one that is more than half dead is marked `rewriting`.
public struct DeleteRequests: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Processes up to `limit` requests older than `grace`; rows being worked on by a worker wait for later.
    public func processDue(grace: Duration, limit: Int = 100) async throws -> [ProcessedDelete] {
        try await CatalogError.wrapping("process delete requests") {
            var processed: [ProcessedDelete] = []
            for _ in 0..<limit {
                guard let result = try await processOne(grace: grace) else { break }
                processed.append(result)
            }
            return processed
        }
    }

    func processOne(grace: Duration) async throws -> ProcessedDelete? {
        try await client.withCatalogTransaction(logger: logger) { connection in
            var request: (logID: Int64, fileID: Int64, hash: String?, path: String, sourceID: Int64)?
            for try await row in try await connection.query("""
                SELECT d.id, d.file_id, f.hash, f.path, f.source_id
                FROM objectstoragedeletelog d JOIN objectstoragefiles f ON f.id = d.file_id
                WHERE d.processed_at IS NULL AND d.requested_at < now() - make_interval(secs => \(grace.seconds))
                  AND f.state NOT IN ('transcoding', 'archiving')
                  -- Content still in a spool waits until it is sent: a sender holds its row by id, and handing the
                  -- content over to another row under it would leave that row pointing at a spool file that goes.
                  AND (SELECT h.state FROM objectstoragefiles h WHERE h.id = content_holder(f.id)) IS DISTINCT FROM 'spooled'
                ORDER BY d.requested_at, d.id
                LIMIT 1
                FOR UPDATE OF d SKIP LOCKED
                """, logger: logger).decode((Int64, Int64, String?, String, Int64).self) {
                request = row
            }
            guard let request else { return nil }
            // The same advisory locks as the uploader's `IngestCatalog.record` and the archiver's dedupe take, in
            // the same order (content hash and path, ascending), so a file can never be recorded as a duplicate
            // of content this transaction is releasing: one of the two waits for the other and sees its result.
            try await ContentLocks.lock(hashes: request.hash.map { [$0] } ?? [], paths: [(request.path, request.sourceID)], on: connection, logger: logger)
            let outcome = try await deleteFile(request.fileID, on: connection)
            _ = try await connection.query(
                "UPDATE objectstoragedeletelog SET processed_at = now(), outcome = \(outcome) WHERE id = \(request.logID)", logger: logger)
            logger.info("delete processed", metadata: ["file.id": "\(request.fileID)", "delete.outcome": "\(outcome)"])
            return ProcessedDelete(logID: request.logID, fileID: request.fileID, outcome: outcome)
        }
    }

    private func deleteFile(_ fileID: Int64, on connection: CatalogConnection) async throws -> String {
        var file: (state: String, deletedAt: Date?)?
        for try await row in try await connection.query("""
            SELECT state, deleted_at FROM objectstoragefiles WHERE id = \(fileID) FOR UPDATE
            """, logger: logger).decode((String, Date?).self) {
            file = (row.0, row.1)
        }
        guard let file else { return "no such file" }
        if file.deletedAt != nil { return "already deleted" }
        // A deleted file's copy is no longer its to hand out: its presigned URL goes with it.
        _ = try await connection.query("""
            UPDATE objectstoragefiles SET deleted_at = now(), signed_download_url = NULL, signed_download_url_expires_at = NULL
            WHERE id = \(fileID)
            """, logger: logger)

        // The row whose stored content this file used, however long the chain of duplicates.
        var ownerID: Int64?
        for try await id in try await connection.query("SELECT content_holder(\(fileID))", logger: logger).decode(Int64?.self) {
            ownerID = id
        }
        guard let owner = ownerID else { return "marked deleted" }
        var ownerRow: (state: String, deletedAt: Date?, storage: String?, key: String?, archiveKey: String?, bundleID: Int64?, storedSize: Int64?)?
        for try await row in try await connection.query("""
            SELECT state, deleted_at, storage, storage_key, archive_key, bundle_id, stored_size_bytes
            FROM objectstoragefiles WHERE id = \(owner) FOR UPDATE
            """, logger: logger).decode((String, Date?, String?, String?, String?, Int64?, Int64?).self) {
            ownerRow = (row.0, row.1, row.2, row.3, row.4, row.5, row.6)
        }
        guard let ownerRow else { return "marked deleted" }
        if ownerRow.deletedAt == nil {
            return "marked deleted; content kept: still held by file \(owner)"
        }
        // The holder is deleted. If live files still use its content, the lowest of them becomes the holder, so
        // that no live file ever points at a deleted row (which dedupe, restore and the audit would not follow).
        if let heir = try await handOver(from: owner, on: connection) {
            return "marked deleted; content kept: handed over to file \(heir), which still uses it"
        }
        if ownerRow.state == "archived", let bundleID = ownerRow.bundleID {
            return try await markDeadInBundle(bundleID, bytes: ownerRow.storedSize ?? 0, fileID: owner, on: connection)
        }
        if ownerRow.state == "archived", let key = ownerRow.archiveKey {
            try await queue(area: "archive", keys: [key, key + ".map"], fileID: owner, on: connection)
            return "marked deleted; archive object \(key) queued for removal"
        }
        if ownerRow.storage == "staging", let key = ownerRow.key {
            try await queue(area: "staging", keys: [key], fileID: owner, on: connection)
            return "marked deleted; staging copy queued for removal"
        }
        return "marked deleted; no stored content"
    }

    /// Makes the lowest-id live file whose chain of duplicates leads to `holder` the new holder of its content:
    /// it takes the holder's state and every column that says where the content is, and the other live files
    /// of the chain become its duplicates. Returns the heir, or nil when no live file uses the content.
    private func handOver(from holder: Int64, on connection: CatalogConnection) async throws -> Int64? {
        var users: [Int64] = []
        for try await id in try await connection.query("""
            WITH RECURSIVE users (id) AS (
                SELECT id FROM objectstoragefiles WHERE duplicate_of = \(holder) AND state = 'duplicate'
                UNION
                SELECT f.id FROM users u JOIN objectstoragefiles f ON f.duplicate_of = u.id AND f.state = 'duplicate'
            )
            SELECT f.id FROM users u JOIN objectstoragefiles f ON f.id = u.id
            WHERE f.deleted_at IS NULL ORDER BY f.id FOR UPDATE OF f
            """, logger: logger).decode(Int64.self) {
            users.append(id)
        }
        guard let heir = users.first else { return nil }
        _ = try await connection.query("""
            UPDATE objectstoragefiles AS f SET
                state = h.state, kind = h.kind, storage = h.storage, storage_key = h.storage_key, archive_key = h.archive_key,
                bundle_id = h.bundle_id, bundle_offset = h.bundle_offset, stored_size_bytes = h.stored_size_bytes,
                stored_hash = h.stored_hash, archived_at = h.archived_at, signed_download_url = h.signed_download_url,
                signed_download_url_expires_at = h.signed_download_url_expires_at, degraded = h.degraded,
                rewritten_from_bundle = h.rewritten_from_bundle, error = h.error, attempts = 0, run_after = now(),
                duplicate_of = NULL, details = f.details || h.details || jsonb_build_object('content_handed_over_from', h.id)
            FROM objectstoragefiles AS h
            WHERE f.id = \(heir) AND h.id = \(holder)
            """, logger: logger)
        _ = try await connection.query("""
            UPDATE objectstoragefiles SET duplicate_of = \(heir) WHERE id = ANY(\(Array(users.dropFirst()))::bigint[])
            """, logger: logger)
        return heir
    }

    private func markDeadInBundle(_ bundleID: Int64, bytes: Int64, fileID: Int64, on connection: CatalogConnection) async throws -> String {
        var bundle: (key: String, manifest: String?, members: Int, dead: Int, raw: Int64, deadBytes: Int64)?
        for try await row in try await connection.query("""
            UPDATE bundles SET dead_members = dead_members + 1, dead_bytes = dead_bytes + \(bytes)
            WHERE id = \(bundleID)
            RETURNING archive_key, manifest_key, member_count, dead_members, raw_bytes, dead_bytes
            """, logger: logger).decode((String, String?, Int, Int, Int64, Int64).self) {
            bundle = (row.0, row.1, row.2, row.3, row.4, row.5)
        }
        guard let bundle else { return "marked deleted" }
        if bundle.dead >= bundle.members {
            _ = try await connection.query("UPDATE bundles SET state = 'deleted' WHERE id = \(bundleID)", logger: logger)
            try await queue(area: "archive", keys: [bundle.key] + (bundle.manifest.map { [$0] } ?? []), fileID: fileID, on: connection)
            return "marked deleted; bundle \(bundleID) has no live members left and is queued for removal"
        }
        let deadShare = bundle.raw > 0 ? Double(bundle.deadBytes) / Double(bundle.raw) : 0
        if deadShare > 0.5 {
            _ = try await connection.query("UPDATE bundles SET state = 'rewriting' WHERE id = \(bundleID) AND state = 'archived'", logger: logger)
            return "marked deleted; bundle \(bundleID) is \(Int(deadShare * 100))% dead and marked for rewriting"
        }
        return "marked deleted; its \(bytes) bytes are now dead in bundle \(bundleID) (\(Int(deadShare * 100))% dead)"
    }

    private func queue(area: String, keys: [String], fileID: Int64, on connection: CatalogConnection) async throws {
        _ = try await connection.query("""
            INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
            SELECT \(area), key, \(fileID), 'delete request' FROM unnest(\(keys)::text[]) AS key
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
