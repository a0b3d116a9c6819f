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
/// A file's content may go only when the file that holds it is deleted and no live file is a duplicate of it.
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
        var processed: [ProcessedDelete] = []
        for _ in 0..<limit {
            guard let result = try await processOne(grace: grace) else { break }
            processed.append(result)
        }
        return processed
    }

    func processOne(grace: Duration) async throws -> ProcessedDelete? {
        try await client.withTransaction(logger: logger) { connection in
            var request: (Int64, Int64)?
            for try await row in try await connection.query("""
                SELECT d.id, d.file_id FROM objectstoragedeletelog d JOIN objectstoragefiles f ON f.id = d.file_id
                WHERE d.processed_at IS NULL AND d.requested_at < now() - make_interval(secs => \(grace.seconds))
                  AND f.state NOT IN ('transcoding', 'archiving')
                ORDER BY d.requested_at, d.id
                LIMIT 1
                FOR UPDATE OF d SKIP LOCKED
                """, logger: logger).decode((Int64, Int64).self) {
                request = row
            }
            guard let (logID, fileID) = request else { return nil }
            let outcome = try await deleteFile(fileID, on: connection)
            _ = try await connection.query(
                "UPDATE objectstoragedeletelog SET processed_at = now(), outcome = \(outcome) WHERE id = \(logID)", logger: logger)
            logger.info("delete processed", metadata: ["file.id": "\(fileID)", "delete.outcome": "\(outcome)"])
            return ProcessedDelete(logID: logID, fileID: fileID, outcome: outcome)
        }
    }

    private func deleteFile(_ fileID: Int64, on connection: PostgresConnection) async throws -> String {
        var file: (state: String, deletedAt: Date?, duplicateOf: Int64?)?
        for try await row in try await connection.query("""
            SELECT state, deleted_at, duplicate_of FROM objectstoragefiles WHERE id = \(fileID) FOR UPDATE
            """, logger: logger).decode((String, Date?, Int64?).self) {
            file = (row.0, row.1, row.2)
        }
        guard let file else { return "no such file" }
        if file.deletedAt != nil { return "already deleted" }
        _ = try await connection.query("UPDATE objectstoragefiles SET deleted_at = now() WHERE id = \(fileID)", logger: logger)

        // The row whose stored content this file used.
        let owner = file.state == "duplicate" ? (file.duplicateOf ?? fileID) : fileID
        var ownerRow: (state: String, deletedAt: Date?, storage: String?, key: String?, archiveKey: String?, bundleID: Int64?, storedSize: Int64?)?
        for try await row in try await connection.query("""
            SELECT state, deleted_at, storage, storage_key, archive_key, bundle_id, stored_size_bytes
            FROM objectstoragefiles WHERE id = \(owner) FOR UPDATE
            """, logger: logger).decode((String, Date?, String?, String?, String?, Int64?, Int64?).self) {
            ownerRow = (row.0, row.1, row.2, row.3, row.4, row.5, row.6)
        }
        guard let ownerRow else { return "marked deleted" }
        var users = 0
        for try await count in try await connection.query("""
            SELECT count(*) FROM objectstoragefiles WHERE duplicate_of = \(owner) AND deleted_at IS NULL
            """, logger: logger).decode(Int.self) {
            users = count
        }
        if ownerRow.deletedAt == nil || users > 0 {
            let needed = (ownerRow.deletedAt == nil ? 1 : 0) + users
            return "marked deleted; content kept: still used by \(needed) other file\(needed == 1 ? "" : "s")"
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

    private func markDeadInBundle(_ bundleID: Int64, bytes: Int64, fileID: Int64, on connection: PostgresConnection) async throws -> String {
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

    private func queue(area: String, keys: [String], fileID: Int64, on connection: PostgresConnection) async throws {
        _ = try await connection.query("""
            INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
            SELECT \(area), key, \(fileID), 'delete request' FROM unnest(\(keys)::text[]) AS key
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
