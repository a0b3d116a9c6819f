import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A file as the catalog knows it, for the uploader's decisions.
public struct CataloguedFile: Sendable, Hashable {
    public let id: Int64
    public let version: Int
    public let sizeBytes: Int64
    public let modifiedAt: Date?
    public let hash: String?
    public let state: FileState
}

/// An upload that started but is not catalogued yet (see the `pending_uploads` table).
public struct PendingUpload: Sendable, Hashable {
    public let id: Int64
    public let stagingKey: String
    public let sizeBytes: Int64
    public let modifiedAt: Date?
    /// The multipart journal's JSON, when a multipart upload was begun.
    public let multipartState: String?
}

/// What a file found on the source is, ready to be catalogued.
public struct IngestedFile: Sendable {
    public var sourceID: Int64
    /// The path inside the source, `/`-separated; invalid UTF-8 bytes escaped as `\xNN`.
    public var path: String
    /// The exact bytes of the path when it is not valid UTF-8.
    public var rawPath: [UInt8]?
    public var name: String
    public var sizeBytes: Int64
    public var modifiedAt: Date?
    public var kind: FileKind
    public var details: [String: String]
    public var degraded: Bool

    public init(sourceID: Int64, path: String, rawPath: [UInt8]?, name: String, sizeBytes: Int64, modifiedAt: Date?,
                kind: FileKind, details: [String: String] = [:], degraded: Bool = false) {
        self.sourceID = sourceID
        self.path = path
        self.rawPath = rawPath
        self.name = name
        self.sizeBytes = sizeBytes
        self.modifiedAt = modifiedAt
        self.kind = kind
        self.details = details
        self.degraded = degraded
    }
}

/// How the catalog took a file whose bytes were hashed (and possibly staged).
public enum CatalogOutcome: Sendable, Hashable {
    /// A new row in state `staged`; its bytes are in staging under the key given.
    case staged(fileID: Int64, version: Int)
    /// Its content is already held by another row; the row is `duplicate` and any staged copy is not needed.
    case duplicate(fileID: Int64, version: Int, of: Int64)
    /// The same path with the same content is catalogued already: nothing new, any staged copy is not needed.
    case unchanged(fileID: Int64)
}

/// The uploader's queries. Every decision that must not race (versions, duplicates) is taken in one transaction
/// under an advisory lock on the content hash, so that concurrent uploaders never store one content twice.
public struct IngestCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The `sources` row for this label, created or updated (metadata merged, note replaced when given).
    public func openSource(label: String, metadata: [String: String], note: String?, origin: String) async throws -> Int64 {
        let metadataJSON = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
        let rows = try await client.query("""
            INSERT INTO sources (label, metadata, note, origin) VALUES (\(label), \(metadataJSON)::jsonb, \(note), \(origin))
            ON CONFLICT (label) DO UPDATE SET metadata = sources.metadata || EXCLUDED.metadata,
                note = COALESCE(EXCLUDED.note, sources.note), origin = EXCLUDED.origin, finished_at = NULL
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw CatalogError(.migrationFailed, "the sources row for \(label) was not returned")
    }

    /// The newest version of a path in a source.
    public func latestVersion(sourceID: Int64, path: String) async throws -> CataloguedFile? {
        try await latestVersion(sourceID: sourceID, path: path, on: nil)
    }

    /// True when some row holds content of exactly this size: then the uploader hashes before sending.
    public func contentOfSizeExists(_ size: Int64) async throws -> Bool {
        let rows = try await client.query(
            "SELECT EXISTS (SELECT 1 FROM objectstoragefiles WHERE size_bytes = \(size) AND hash IS NOT NULL AND state NOT IN ('unreadable', 'failed'))",
            logger: logger)
        for try await exists in rows.decode(Bool.self) { return exists }
        return false
    }

    /// The row that holds this content (the oldest one that is not itself a duplicate or lost).
    public func holder(ofHash hash: String) async throws -> Int64? {
        let rows = try await client.query("""
            SELECT id FROM objectstoragefiles
            WHERE hash = \(hash) AND state NOT IN ('duplicate', 'unreadable', 'failed') ORDER BY id LIMIT 1
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        return nil
    }

    public func pendingUpload(sourceID: Int64, path: String) async throws -> PendingUpload? {
        let rows = try await client.query("""
            SELECT id, staging_key, size_bytes, modified_at, multipart_state::text FROM pending_uploads
            WHERE source_id = \(sourceID) AND path = \(path)
            """, logger: logger)
        for try await (id, key, size, modified, state) in rows.decode((Int64, String, Int64, Date?, String?).self) {
            return PendingUpload(id: id, stagingKey: key, sizeBytes: size, modifiedAt: modified, multipartState: state)
        }
        return nil
    }

    /// Records that an upload of this path to `stagingKey` begins (before the first byte is sent).
    public func beginPendingUpload(sourceID: Int64, path: String, sizeBytes: Int64, modifiedAt: Date?, stagingKey: String) async throws -> PendingUpload {
        let rows = try await client.query("""
            INSERT INTO pending_uploads (source_id, path, size_bytes, modified_at, staging_key)
            VALUES (\(sourceID), \(path), \(sizeBytes), \(modifiedAt), \(stagingKey))
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) {
            return PendingUpload(id: id, stagingKey: stagingKey, sizeBytes: sizeBytes, modifiedAt: modifiedAt, multipartState: nil)
        }
        throw CatalogError(.migrationFailed, "the pending upload for \(path) was not returned")
    }

    public func saveMultipartState(pendingID: Int64, json: String?) async throws {
        _ = try await client.query(
            "UPDATE pending_uploads SET multipart_state = \(json)::jsonb, updated_at = now() WHERE id = \(pendingID)",
            logger: logger)
    }

    /// Forgets a pending upload (its staged object, if any, is the caller's to delete).
    public func dropPendingUpload(id: Int64) async throws {
        _ = try await client.query("DELETE FROM pending_uploads WHERE id = \(id)", logger: logger)
    }

    /// Pending uploads of a source, for the sweep at the end of a run (uploads of files that vanished).
    public func pendingUploads(sourceID: Int64) async throws -> [(path: String, upload: PendingUpload)] {
        let rows = try await client.query("""
            SELECT path, id, staging_key, size_bytes, modified_at, multipart_state::text FROM pending_uploads WHERE source_id = \(sourceID)
            """, logger: logger)
        var result: [(String, PendingUpload)] = []
        for try await (path, id, key, size, modified, state) in rows.decode((String, Int64, String, Int64, Date?, String?).self) {
            result.append((path, PendingUpload(id: id, stagingKey: key, sizeBytes: size, modifiedAt: modified, multipartState: state)))
        }
        return result
    }

    /// Catalogues a file whose bytes were hashed. `stagingKey` is where they were stored, or nil when they were
    /// hashed without uploading (the hash was already known). One transaction: the version, the duplicate check
    /// and the insert cannot interleave with another uploader's for the same content or path.
    public func record(_ file: IngestedFile, hash: String, stagingKey: String?, pendingID: Int64?) async throws -> CatalogOutcome {
        let detailsJSON = String(decoding: try JSONEncoder().encode(file.details), as: UTF8.self)
        return try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(hash), 0))", logger: logger)
            _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(file.path), \(file.sourceID)))", logger: logger)
            if let pendingID {
                _ = try await connection.query("DELETE FROM pending_uploads WHERE id = \(pendingID)", logger: logger)
            }
            let latest = try await latestVersion(sourceID: file.sourceID, path: file.path, on: connection)
            // A failed row is not done: its content is sent again (into the same row) so it can be archived.
            if let latest, latest.hash == hash, latest.state != .unreadable, latest.state != .failed {
                return .unchanged(fileID: latest.id)
            }
            var holder: Int64?
            for try await id in try await connection.query("""
                SELECT id FROM objectstoragefiles
                WHERE hash = \(hash) AND state NOT IN ('duplicate', 'unreadable', 'failed') ORDER BY id LIMIT 1
                """, logger: logger).decode(Int64.self) {
                holder = id
            }
            let state: FileState = holder == nil ? .staged : .duplicate
            let storage: String? = holder == nil ? StorageArea.staging.rawValue : nil
            let key = holder == nil ? stagingKey : nil
            guard holder != nil || stagingKey != nil else {
                throw CatalogError(.migrationFailed, "\(file.path): content with an unknown hash must be staged before it is catalogued")
            }

            // A path that was unreadable before, or whose archiving failed, gets its content in the same row: no new
            // version for it. A failed row's old staging copy is queued for removal.
            if let latest, latest.state == .unreadable || (latest.state == .failed && latest.hash == hash) {
                _ = try await connection.query("""
                    INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
                    SELECT 'staging', storage_key, id, 'replaced by a new upload' FROM objectstoragefiles
                    WHERE id = \(latest.id) AND storage = 'staging' AND storage_key IS NOT NULL AND storage_key IS DISTINCT FROM \(key)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                _ = try await connection.query("""
                    UPDATE objectstoragefiles SET hash = \(hash), size_bytes = \(file.sizeBytes), modified_at = \(file.modifiedAt),
                        kind = \(file.kind.rawValue), state = \(state.rawValue), storage = \(storage), storage_key = \(key),
                        duplicate_of = \(holder), error = NULL, details = \(detailsJSON)::jsonb, degraded = \(file.degraded),
                        attempts = 0, run_after = now(), stored_size_bytes = NULL, stored_hash = NULL
                    WHERE id = \(latest.id)
                    """, logger: logger)
                return holder.map { .duplicate(fileID: latest.id, version: latest.version, of: $0) } ?? .staged(fileID: latest.id, version: latest.version)
            }

            let version = (latest?.version ?? 0) + 1
            let rows = try await connection.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, raw_path, kind, version, size_bytes, hash, modified_at,
                    state, storage, storage_key, duplicate_of, details, degraded)
                VALUES (\(file.sourceID), \(file.name), \(file.path), \(file.rawPath.map { ByteBuffer(bytes: $0) }), \(file.kind.rawValue),
                    \(version), \(file.sizeBytes), \(hash), \(file.modifiedAt), \(state.rawValue), \(storage), \(key), \(holder),
                    \(detailsJSON)::jsonb, \(file.degraded))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) {
                return holder.map { .duplicate(fileID: id, version: version, of: $0) } ?? .staged(fileID: id, version: version)
            }
            throw CatalogError(.migrationFailed, "the row for \(file.path) was not returned")
        }
    }

    /// Records a file whose bytes could not be read (after retries), with the error.
    public func recordUnreadable(_ file: IngestedFile, error: String) async throws -> Int64 {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(file.path), \(file.sourceID)))", logger: logger)
            let latest = try await latestVersion(sourceID: file.sourceID, path: file.path, on: connection)
            if let latest, latest.state == .unreadable {
                _ = try await connection.query("UPDATE objectstoragefiles SET error = \(error), size_bytes = \(file.sizeBytes) WHERE id = \(latest.id)", logger: logger)
                return latest.id
            }
            let rows = try await connection.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, raw_path, kind, version, size_bytes, modified_at, state, error)
                VALUES (\(file.sourceID), \(file.name), \(file.path), \(file.rawPath.map { ByteBuffer(bytes: $0) }), \(file.kind.rawValue),
                    \((latest?.version ?? 0) + 1), \(file.sizeBytes), \(file.modifiedAt), 'unreadable', \(error))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw CatalogError(.migrationFailed, "the row for \(file.path) was not returned")
        }
    }

    /// Closes a run: counts for the source and its finish time.
    public func finishSource(_ sourceID: Int64, counts: SourceCounts) async throws {
        _ = try await client.query("""
            UPDATE sources SET finished_at = now(), files_seen = \(counts.filesSeen), bytes_seen = \(counts.bytesSeen),
                files_stored = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state NOT IN ('duplicate', 'unreadable', 'failed')),
                files_duplicate = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state = 'duplicate'),
                files_unreadable = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state = 'unreadable'),
                files_skipped = \(counts.filesSkipped)
            WHERE id = \(sourceID)
            """, logger: logger)
    }

    private func latestVersion(sourceID: Int64, path: String, on connection: PostgresConnection?) async throws -> CataloguedFile? {
        let query: PostgresQuery = """
            SELECT id, version, size_bytes, modified_at, hash, state FROM objectstoragefiles
            WHERE source_id = \(sourceID) AND path = \(path) ORDER BY version DESC LIMIT 1
            """
        let rows = if let connection { try await connection.query(query, logger: logger) } else { try await client.query(query, logger: logger) }
        for try await (id, version, size, modified, hash, state) in rows.decode((Int64, Int, Int64, Date?, String?, String).self) {
            return CataloguedFile(id: id, version: version, sizeBytes: size, modifiedAt: modified, hash: hash, state: FileState(rawValue: state) ?? .failed)
        }
        return nil
    }
}

/// What one ingest run saw, stored on its `sources` row.
public struct SourceCounts: Sendable, Hashable {
    public var filesSeen: Int64
    public var bytesSeen: Int64
    public var filesSkipped: Int64

    public init(filesSeen: Int64, bytesSeen: Int64, filesSkipped: Int64) {
        self.filesSeen = filesSeen
        self.bytesSeen = bytesSeen
        self.filesSkipped = filesSkipped
    }
}
