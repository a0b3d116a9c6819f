import Foundation
import PipelineCore
import PostgresNIO

/// A restore asked for in the browser, as its page shows it (see `CatalogSchema.browserRestores`).
public struct FamilyRestore: Sendable, Hashable {
    public let id: Int64
    public let requestedBy: String
    public let sourceLabel: String
    /// The one file asked for, or nil for a folder or the whole source.
    public let fileID: Int64?
    public let filePath: String?
    /// '' for the whole source, else the folder (ending in '/'); nil for one file.
    public let directory: String?
    public let tier: String
    public let days: Int
    /// restoring, ready, failed, uncached or expired.
    public let state: String
    public let requestedAt: Date
    public let expectedReadyAt: Date
    public let readyAt: Date?
    public let cachedUntil: Date?
    public let endedAt: Date?
    public let endedBy: String?
    public let error: String?
    public let files: Int
    public let bytes: Int64
    /// Archive objects the restore needs, and how many of them are cached already.
    public let objects: Int
    public let objectsCached: Int

    /// What was asked for, in words.
    public var selection: String {
        if let filePath { return filePath }
        if let directory, !directory.isEmpty { return directory }
        return "the whole source"
    }
}

/// One file of a restore's download: where its bytes are now, or why they are not there.
public struct FamilyRestoreEntry: Sendable, Hashable {
    public let fileID: Int64
    public let download: FamilyDownload
    /// Why the file is not in the download (when `download.read` is nil).
    public let missingReason: String?
    /// Not readable only because its archive copy is not back (yet, while the restore runs; any more, after it).
    public let waitsForArchive: Bool
}

extension FamilyCatalog {
    public enum RestoreRequestOutcome: Sendable, Hashable {
        case created(id: Int64)
        /// Nothing to restore there: no live file under that folder.
        case empty
        /// The source is encrypted: the server cannot open its files (only `uploader restore` with the key can).
        case encrypted
    }

    /// The files a selection (`sel`: restore id or NULL, source, one file or a folder prefix) covers: the newest live
    /// version of each path under the folder, or the one file asked for; `h` holds the content, `b` is its bundle
    /// and `c` a live cached copy of its archive object, the selection's own restore's first (see `downloadJoins`).
    static let selectedFiles = """
        JOIN objectstoragefiles f ON f.source_id = sel.source_id
        JOIN sources s ON s.id = f.source_id
        LEFT JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN content_holder(f.id) ELSE f.id END
        LEFT JOIN sources hs ON hs.id = h.source_id
        LEFT JOIN bundles b ON b.id = h.bundle_id
        \(cachedCopyJoin(preferring: "sel.restore_id"))
        WHERE f.deleted_at IS NULL
          AND CASE WHEN sel.file_id IS NOT NULL THEN f.id = sel.file_id
                   ELSE left(f.path, length(sel.directory)) = sel.directory
                        AND NOT EXISTS (SELECT 1 FROM objectstoragefiles n WHERE n.source_id = f.source_id AND n.path = f.path
                                        AND n.version > f.version AND n.deleted_at IS NULL) END
        """

    /// Records a restore of file `fileID` or of the folder `directory` ('' or ending in '/') of source `label`, with
    /// the archive objects it needs (those of files not readable from staging). A restore that needs no object is
    /// ready at once. nil when the caller may not see the source or the file.
    public func requestRestore(
        sourceLabel label: String, fileID: Int64?, directory: String?, tier: String, days: Int, expectedReady: @Sendable (String?) -> Duration,
        visibleTo user: AccountUser
    ) async throws -> RestoreRequestOutcome? {
        precondition((fileID == nil) != (directory == nil), "a restore names one file or one folder")
        return try await CatalogError.wrapping("request a restore") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                let isAdmin = user.role == .admin
                var found: (Int64, Bool)?
                for try await row in try await connection.query("""
                    SELECT s.id, s.encryption IS NOT NULL FROM sources s
                    WHERE s.label = \(label) AND (\(isAdmin) OR s.owner_id = \(user.id))
                      AND (\(fileID)::bigint IS NULL OR EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.id = \(fileID) AND f.source_id = s.id AND f.deleted_at IS NULL))
                    """, logger: logger).decode((Int64, Bool).self) { found = row }
                guard let (sourceID, encrypted) = found else { return nil }
                if encrypted { return .encrypted }
                // Per file: its size, and the archive object it needs when staging does not have it.
                var files = 0
                var bytes: Int64 = 0
                var objects: [String: (Int64?, String?, String, String?)] = [:]
                for try await (size, key, storedBytes, storedHash, compression, storageClass) in try await connection.query("""
                    WITH sel AS (SELECT NULL::bigint AS restore_id, \(sourceID)::bigint AS source_id, \(fileID)::bigint AS file_id,
                                        \(directory)::text AS directory)
                    SELECT f.size_bytes,
                           CASE WHEN h.state = 'archived' AND h.archive_key IS NOT NULL AND (\(unescaped: Self.stagingKeyExpression)) IS NULL
                                THEN h.archive_key END,
                           CASE WHEN h.bundle_id IS NULL THEN h.stored_size_bytes ELSE b.stored_bytes END,
                           CASE WHEN h.bundle_id IS NULL THEN h.stored_hash ELSE b.hash END,
                           coalesce(b.compression, 'none'), coalesce(b.storage_class, h.details->>'storage_class')
                    FROM sel \(unescaped: Self.selectedFiles)
                    """, logger: logger).decode((Int64, String?, Int64?, String?, String, String?).self) {
                    files += 1
                    bytes += size
                    if let key { objects[key] = (storedBytes, storedHash, compression, storageClass) }
                }
                guard files > 0 else { return .empty }
                let wait = objects.values.map { expectedReady($0.3) }.max() ?? .zero
                let ready = objects.isEmpty
                var restoreID: Int64?
                for try await id in try await connection.query("""
                    INSERT INTO browser_restores (requested_by, source_id, file_id, directory, tier, days, state, expected_ready_at,
                                                  ready_at, cached_until, files, bytes)
                    VALUES (\(user.id), \(sourceID), \(fileID), \(directory), \(tier), \(days), \(ready ? "ready" : "restoring"),
                            now() + make_interval(secs => \(Double(wait.components.seconds))),
                            CASE WHEN \(ready) THEN now() END, CASE WHEN \(ready) THEN now() + make_interval(days => \(days)::int) END,
                            \(files), \(bytes))
                    RETURNING id
                    """, logger: logger).decode(Int64.self) { restoreID = id }
                guard let restoreID else { throw CatalogError(.queryFailed, "the new restore was not recorded") }
                for (key, object) in objects.sorted(by: { $0.key < $1.key }) {
                    _ = try await connection.query("""
                        INSERT INTO browser_restore_objects (restore_id, archive_key, stored_bytes, stored_sha256, compression, storage_class)
                        VALUES (\(restoreID), \(key), \(object.0), \(object.1), \(object.2), \(object.3))
                        """, logger: logger)
                }
                return .created(id: restoreID)
            }
        }
    }

    static let restoreColumns = """
        SELECT r.id, u.name, s.label, r.file_id, (SELECT path FROM objectstoragefiles WHERE id = r.file_id), r.directory, r.tier, r.days,
               r.state, r.requested_at, r.expected_ready_at, r.ready_at, r.cached_until, r.ended_at, r.ended_by, r.error, r.files, r.bytes,
               (SELECT count(*) FROM browser_restore_objects o WHERE o.restore_id = r.id),
               (SELECT count(*) FROM browser_restore_objects o WHERE o.restore_id = r.id AND o.cached_at IS NOT NULL)
        FROM browser_restores r JOIN users u ON u.id = r.requested_by JOIN sources s ON s.id = r.source_id
        """

    /// The caller's restores (an admin's: everyone's), newest first; one restore when `id` is given. Another
    /// member's restore is absent, as if it did not exist.
    public func restores(id: Int64? = nil, visibleTo user: AccountUser, limit: Int = 100) async throws -> [FamilyRestore] {
        try await CatalogError.wrapping("list restores") {
            let isAdmin = user.role == .admin
            var result: [FamilyRestore] = []
            let rows = try await client.catalogQuery("""
                \(unescaped: Self.restoreColumns)
                WHERE (\(isAdmin) OR r.requested_by = \(user.id)) AND (\(id)::bigint IS NULL OR r.id = \(id))
                ORDER BY r.id DESC LIMIT \(limit)
                """, logger: logger)
            for try await row in rows.decode(
                (Int64, String, String, Int64?, String?, String?, String, Int32, String, Date, Date, Date?, Date?, Date?, String?, String?, Int32, Int64, Int64, Int64).self)
            {
                result.append(FamilyRestore(
                    id: row.0, requestedBy: row.1, sourceLabel: row.2, fileID: row.3, filePath: row.4, directory: row.5, tier: row.6, days: Int(row.7),
                    state: row.8, requestedAt: row.9, expectedReadyAt: row.10, readyAt: row.11, cachedUntil: row.12, endedAt: row.13, endedBy: row.14,
                    error: row.15, files: Int(row.16), bytes: row.17, objects: Int(row.18), objectsCached: Int(row.19)))
            }
            return result
        }
    }

    /// The files of restore `id` with where each one's bytes are now, in path order; nil when the caller may not see
    /// the restore. A file is read from staging when it is there, else from this or any other live restore's cached
    /// copy of its archive object; a file with neither is listed with the reason.
    public func restoreEntries(id: Int64, visibleTo user: AccountUser) async throws -> [FamilyRestoreEntry]? {
        try await CatalogError.wrapping("list a restore's files") {
            let isAdmin = user.role == .admin
            var visible = false
            for try await _ in try await client.catalogQuery(
                "SELECT 1 FROM browser_restores WHERE id = \(id) AND (\(isAdmin) OR requested_by = \(user.id))", logger: logger
            ).decode(Int32.self) { visible = true }
            guard visible else { return nil }
            var entries: [FamilyRestoreEntry] = []
            let rows = try await client.catalogQuery("""
                WITH sel AS (SELECT id AS restore_id, source_id, file_id, directory FROM browser_restores WHERE id = \(id))
                SELECT f.id, h.state, s.encryption IS NOT NULL OR hs.encryption IS NOT NULL, \(unescaped: Self.downloadColumns)
                FROM sel \(unescaped: Self.selectedFiles)
                ORDER BY f.path
                """, logger: logger)
            for try await row in rows.decode((Int64, String?, Bool, String, Int64, String?, Double?, String?, String?, Int64, Int64?, String?, String?, String?).self) {
                let download = Self.download((row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12, row.13))
                var reason: String?
                let waits = download.read == nil && row.5 != nil && !row.2 && row.1 == "archived"
                if download.read == nil {
                    if row.5 == nil { reason = "unreadable on the original medium: there are no bytes to restore" }
                    else if row.2 { reason = "encrypted: only uploader restore with its key can open it" }
                    else if row.1 == "archived" { reason = "its archive copy is not restored (any more)" }
                    else { reason = "not in the cloud yet (\(row.1 ?? "missing"))" }
                }
                entries.append(FamilyRestoreEntry(fileID: row.0, download: download, missingReason: reason, waitsForArchive: waits))
            }
            return entries
        }
    }

    /// The same database's side of browser restores that the archiver uses (its copies' bookkeeping).
    public var restoreCopies: BrowserRestoreCatalog { BrowserRestoreCatalog(client: client, logger: logger) }

    /// Ends restore `id` now ("uncache"): its cached copies are to be deleted. Returns their keys (the caller deletes
    /// them and then records it with `BrowserRestoreCatalog.copiesRemoved`; the archiver's sweep deletes whatever is
    /// left), or nil when the caller
    /// may not see it or it is no longer restoring or ready.
    public func uncache(restoreID id: Int64, visibleTo user: AccountUser) async throws -> [String]? {
        try await CatalogError.wrapping("end a restore") {
            let isAdmin = user.role == .admin
            var ended = false
            // The state changes first and commits: a copy the archiver records after it sees the restore ended and
            // removes its own copy (BrowserRestoreCatalog.recordCached locks the restore's row).
            for try await _ in try await client.catalogQuery("""
                UPDATE browser_restores SET state = 'uncached', ended_at = now(), ended_by = \(user.name)
                WHERE id = \(id) AND (\(isAdmin) OR requested_by = \(user.id)) AND state IN ('restoring', 'ready') RETURNING id
                """, logger: logger).decode(Int64.self) { ended = true }
            guard ended else { return nil }
            var keys: [String] = []
            for try await key in try await client.catalogQuery(
                "SELECT cache_key FROM browser_restore_objects WHERE restore_id = \(id) AND cache_key IS NOT NULL", logger: logger
            ).decode(String.self) { keys.append(key) }
            return keys
        }
    }
}
