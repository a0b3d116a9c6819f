import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// The uploader's queries. Every decision that must not race (versions, duplicates) is taken in one transaction
/// under an advisory lock on the content hash, so that concurrent uploaders never store one content twice.
public struct IngestCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// Set for `uploader upload --spool`: new content is recorded `spooled` in this spool (storage `spool`), not
    /// `staged`; `uploader send` moves it on.
    public let spoolID: UUID?

    public init(client: PostgresClient, logger: Logger, spoolID: UUID? = nil) {
        self.client = client
        self.logger = logger
        self.spoolID = spoolID
    }

    /// The state and storage area of a row whose bytes this uploader stored.
    var storedState: FileState { spoolID == nil ? .staged : .spooled }
    var storedArea: String { spoolID == nil ? StorageArea.staging.rawValue : SpoolCatalog.storageArea }

    /// The same database's snapshots (each run is one).
    public var snapshots: SnapshotCatalog { SnapshotCatalog(client: client, logger: logger) }

    /// The `sources` row for this label, created or updated (metadata merged, note replaced when given, `keepRaw`
    /// turned on when asked and never off, `tier` set only while the source holds no file: nil keeps it, and a new
    /// source is cold).
    public func openSource(label: String, metadata: [String: String], note: String?, keepRaw: Bool = false, tier: SourceTier? = nil, origin: String) async throws -> Int64 {
        try await CatalogError.wrapping("open the source") {
            let metadataJSON = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
            let tierText = tier?.rawValue
            let rows = try await client.catalogQuery("""
                INSERT INTO sources (label, metadata, note, origin, keep_raw, tier)
                VALUES (\(label), \(metadataJSON)::jsonb, \(note), \(origin), \(keepRaw), coalesce(\(tierText), 'cold'))
                ON CONFLICT (label) DO UPDATE SET metadata = sources.metadata || EXCLUDED.metadata,
                    note = COALESCE(EXCLUDED.note, sources.note), origin = EXCLUDED.origin, finished_at = NULL,
                    keep_raw = sources.keep_raw OR EXCLUDED.keep_raw,
                    tier = CASE WHEN \(tierText)::text IS NULL OR EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = sources.id)
                                THEN sources.tier ELSE EXCLUDED.tier END
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw CatalogError(.migrationFailed, "the sources row for \(label) was not returned")
        }
    }

    /// The tier recorded for a label, and whether the source holds any file yet (nil: no such source).
    public func tierOfSource(label: String) async throws -> (tier: SourceTier, holdsFiles: Bool)? {
        try await CatalogError.wrapping("look up the source's tier") {
            let rows = try await client.catalogQuery("""
                SELECT s.tier, EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = s.id) FROM sources s WHERE s.label = \(label)
                """, logger: logger)
            for try await (tier, holdsFiles) in rows.decode((String, Bool).self) {
                return (SourceTier(rawValue: tier) ?? .cold, holdsFiles)
            }
            return nil
        }
    }

    /// The newest version of a path in a source.
    public func latestVersion(sourceID: Int64, path: String) async throws -> CataloguedFile? {
        try await CatalogError.wrapping("look up the path's latest version") {
            try await latestVersion(sourceID: sourceID, path: path, on: nil)
        }
    }

    /// For each request, the newest version of its path and whether content of its size is catalogued: the two
    /// questions the uploader asks about every file before reading it, for many files in one round trip.
    public func lookUp(_ requests: [CatalogLookUp]) async throws -> [CatalogLookUpResult] {
        try await CatalogError.wrapping("look up files") {
            var results = [CatalogLookUpResult](repeating: CatalogLookUpResult(latest: nil, contentOfSizeExists: false), count: requests.count)
            guard !requests.isEmpty else { return results }
            // "Content of this size exists" is a LATERAL probe with LIMIT 1, not an EXISTS in the select list: without
            // statistics (a young catalog, as in every benchmark run) the planner hashed that EXISTS, which is a scan of
            // the whole table per batch (10 ms at 11,500 rows, against 0.2 ms through the size index).
            let rows = try await client.catalogQuery("""
                SELECT r.ord, l.id, l.version, l.size_bytes, l.modified_at, l.hash, l.state, l.deleted, s.found IS NOT NULL
                FROM unnest(\(requests.map(\.sourceID))::bigint[], \(requests.map(\.path))::text[], \(requests.map(\.size))::bigint[])
                    WITH ORDINALITY AS r(source_id, path, size, ord)
                LEFT JOIN LATERAL (
                    SELECT id, version, size_bytes, modified_at, hash, state,
                        (deleted_at IS NOT NULL OR EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = objectstoragefiles.id AND d.processed_at IS NULL)) AS deleted
                    FROM objectstoragefiles
                    WHERE source_id = r.source_id AND path = r.path ORDER BY version DESC LIMIT 1
                ) AS l ON true
                LEFT JOIN LATERAL (
                    SELECT 1 AS found FROM objectstoragefiles WHERE size_bytes = r.size AND hash IS NOT NULL
                        AND state NOT IN ('unreadable', 'failed') AND deleted_at IS NULL LIMIT 1
                ) AS s ON true
                """, logger: logger)
            for try await (ordinal, id, version, sizeBytes, modified, hash, state, deleted, exists)
                in rows.decode((Int64, Int64?, Int?, Int64?, Date?, String?, String?, Bool?, Bool).self) {
                let latest = CataloguedFile(joinedID: id, version: version, sizeBytes: sizeBytes, modifiedAt: modified, hash: hash, state: state, deleted: deleted)
                results[Int(ordinal) - 1] = CatalogLookUpResult(latest: latest, contentOfSizeExists: exists)
            }
            return results
        }
    }

    /// True when some row holds content of exactly this size: then the uploader hashes before sending.
    public func contentOfSizeExists(_ size: Int64) async throws -> Bool {
        try await CatalogError.wrapping("look up content by size") {
            let rows = try await client.catalogQuery(
                """
                SELECT EXISTS (SELECT 1 FROM objectstoragefiles WHERE size_bytes = \(size) AND hash IS NOT NULL
                               AND state NOT IN ('unreadable', 'failed') AND deleted_at IS NULL)
                """,
                logger: logger)
            for try await exists in rows.decode(Bool.self) { return exists }
            return false
        }
    }

    /// The row that holds this content (the oldest live one that is not itself a duplicate or lost). A deleted
    /// row is never a holder: its content may already be gone, and the delete processor hands the content of a
    /// deleted holder over to one of its live duplicates (`DeleteRequests`).
    /// For a file of a warm source (`sourceID`), only a row of a warm source holds its content (`TierDedupe`).
    public func holder(ofHash hash: String, sourceID: Int64? = nil) async throws -> Int64? {
        try await CatalogError.wrapping("look up the content's holder") {
            let rows = try await client.catalogQuery("""
                SELECT id FROM objectstoragefiles
                WHERE hash = \(hash) AND state NOT IN ('duplicate', 'unreadable', 'failed') AND deleted_at IS NULL
                    AND (NOT EXISTS (SELECT 1 FROM sources ts WHERE ts.id = \(sourceID) AND ts.tier = 'warm')
                         OR \(unescaped: TierDedupe.isWarm("objectstoragefiles.source_id")))
                ORDER BY id LIMIT 1
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
    }

    public func pendingUpload(sourceID: Int64, path: String) async throws -> PendingUpload? {
        try await CatalogError.wrapping("look up the pending upload") {
            let rows = try await client.catalogQuery("""
                SELECT id, staging_key, size_bytes, modified_at, multipart_state::text FROM pending_uploads
                WHERE source_id = \(sourceID) AND path = \(path)
                """, logger: logger)
            for try await (id, key, size, modified, state) in rows.decode((Int64, String, Int64, Date?, String?).self) {
                return PendingUpload(id: id, stagingKey: key, sizeBytes: size, modifiedAt: modified, multipartState: state)
            }
            return nil
        }
    }

    /// Records that an upload of this path to `stagingKey` begins (before the first byte is sent).
    public func beginPendingUpload(sourceID: Int64, path: String, sizeBytes: Int64, modifiedAt: Date?, stagingKey: String) async throws -> PendingUpload {
        try await CatalogError.wrapping("record the pending upload") {
            let rows = try await client.catalogQuery("""
                INSERT INTO pending_uploads (source_id, path, size_bytes, modified_at, staging_key)
                VALUES (\(sourceID), \(path), \(sizeBytes), \(modifiedAt), \(stagingKey))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) {
                return PendingUpload(id: id, stagingKey: stagingKey, sizeBytes: sizeBytes, modifiedAt: modifiedAt, multipartState: nil)
            }
            throw CatalogError(.migrationFailed, "the pending upload for \(path) was not returned")
        }
    }

    public func saveMultipartState(pendingID: Int64, json: String?) async throws {
        try await CatalogError.wrapping("save the multipart upload state") {
            _ = try await client.catalogQuery(
                "UPDATE pending_uploads SET multipart_state = \(json)::jsonb, updated_at = now() WHERE id = \(pendingID)",
                logger: logger)
        }
    }

    /// Forgets a pending upload (its staged object, if any, is the caller's to delete).
    public func dropPendingUpload(id: Int64) async throws {
        try await CatalogError.wrapping("drop the pending upload") {
            _ = try await client.catalogQuery("DELETE FROM pending_uploads WHERE id = \(id)", logger: logger)
        }
    }

    /// Pending uploads of a source, for the sweep at the end of a run (uploads of files that vanished).
    public func pendingUploads(sourceID: Int64) async throws -> [(path: String, upload: PendingUpload)] {
        try await CatalogError.wrapping("list the pending uploads") {
            let rows = try await client.catalogQuery("""
                SELECT path, id, staging_key, size_bytes, modified_at, multipart_state::text FROM pending_uploads WHERE source_id = \(sourceID)
                """, logger: logger)
            var result: [(String, PendingUpload)] = []
            for try await (path, id, key, size, modified, state) in rows.decode((String, Int64, String, Int64, Date?, String?).self) {
                result.append((path, PendingUpload(id: id, stagingKey: key, sizeBytes: size, modifiedAt: modified, multipartState: state)))
            }
            return result
        }
    }

    /// Catalogues a file whose bytes were hashed. `stagingKey` is where they were stored, or nil when they were
    /// hashed without uploading (the hash was already known). One transaction: the version, the duplicate check
    /// and the insert cannot interleave with another uploader's for the same content or path.
    public func record(_ file: IngestedFile, hash: String, stagingKey: String?, pendingID: Int64?) async throws -> CatalogOutcome {
        try await record([IngestRecord(file: file, hash: hash, stagingKey: stagingKey, pendingID: pendingID)])[0]
    }

    /// Catalogues many hashed files in one transaction, with the same decisions as one by one; the outcomes come
    /// in the order of `records`. Storing many small files, the per-transaction costs (round trips, the commit's
    /// WAL flush) are what limits the rate, so the uploader hands them over in batches.
    ///
    /// The advisory locks on every hash and path of the batch are taken in one statement in ascending key order,
    /// here and for single files alike, so that two uploaders can never wait for each other in a cycle.
    public func record(_ records: [IngestRecord]) async throws -> [CatalogOutcome] {
        try await CatalogError.wrapping("record the ingested files") {
            guard !records.isEmpty else { return [] }
            let details = try records.map { String(decoding: try JSONEncoder().encode($0.file.details), as: UTF8.self) }
            return try await client.withCatalogTransaction(logger: logger) { connection in
                try await ContentLocks.lock(
                    hashes: records.map(\.hash), paths: records.map { ($0.file.path, $0.file.sourceID) }, on: connection, logger: logger)
                let pendingIDs = records.compactMap(\.pendingID)
                if !pendingIDs.isEmpty {
                    _ = try await connection.query("DELETE FROM pending_uploads WHERE id = ANY(\(pendingIDs)::bigint[])", logger: logger)
                }
                var outcomes = [CatalogOutcome?](repeating: nil, count: records.count)
                // A batch never holds one hash or one path twice in the same round: the second must see the first's row.
                for round in Self.rounds(records) {
                    try await record(round.map { records[$0] }, details: round.map { details[$0] }, on: connection)
                        .enumerated().forEach { outcomes[round[$0.offset]] = $0.element }
                }
                return outcomes.map { $0! }
            }
        }
    }

    /// Splits the indices of `records` into rounds in which no hash and no (source, path) appears twice; a record
    /// goes into the round after the last one holding its hash or path, so repeats keep their order.
    static func rounds(_ records: [IngestRecord]) -> [[Int]] {
        var rounds: [[Int]] = []
        var keys: [Set<String>] = []
        for (index, record) in records.enumerated() {
            let recordKeys: Set<String> = ["h:" + record.hash, "p:\(record.file.sourceID):" + record.file.path]
            let round = (keys.lastIndex { !$0.isDisjoint(with: recordKeys) }).map { $0 + 1 } ?? 0
            if round == rounds.count {
                rounds.append([])
                keys.append([])
            }
            rounds[round].append(index)
            keys[round].formUnion(recordKeys)
        }
        return rounds
    }

    /// One round of a batch, inside its transaction and under its locks.
    private func record(_ records: [IngestRecord], details: [String], on connection: CatalogConnection) async throws -> [CatalogOutcome] {
        var latest = [CataloguedFile?](repeating: nil, count: records.count)
        var holders = [Int64?](repeating: nil, count: records.count)
        let rows = try await connection.query("""
            SELECT f.ord, l.id, l.version, l.size_bytes, l.modified_at, l.hash, l.state, l.deleted,
                (SELECT id FROM objectstoragefiles WHERE hash = f.hash AND state NOT IN ('duplicate', 'unreadable', 'failed')
                 AND deleted_at IS NULL AND \(unescaped: TierDedupe.holderFits(holderSource: "objectstoragefiles.source_id", fileSource: "f.source_id"))
                 ORDER BY id LIMIT 1)
            FROM unnest(\(records.map(\.file.sourceID))::bigint[], \(records.map(\.file.path))::text[], \(records.map(\.hash))::text[])
                WITH ORDINALITY AS f(source_id, path, hash, ord)
            LEFT JOIN LATERAL (
                SELECT id, version, size_bytes, modified_at, hash, state,
                    (deleted_at IS NOT NULL OR EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = objectstoragefiles.id AND d.processed_at IS NULL)) AS deleted
                FROM objectstoragefiles
                WHERE source_id = f.source_id AND path = f.path ORDER BY version DESC LIMIT 1
            ) AS l ON true
            """, logger: logger)
        for try await (ordinal, id, version, sizeBytes, modified, hash, state, deleted, holder)
            in rows.decode((Int64, Int64?, Int?, Int64?, Date?, String?, String?, Bool?, Int64?).self) {
            let index = Int(ordinal) - 1
            holders[index] = holder
            latest[index] = CataloguedFile(
                joinedID: id, version: version, sizeBytes: sizeBytes, modifiedAt: modified, hash: hash, state: state, deleted: deleted)
        }

        var outcomes = [CatalogOutcome?](repeating: nil, count: records.count)
        var inserts: [Int] = []
        for (index, record) in records.enumerated() {
            let (file, hash, holder) = (record.file, record.hash, holders[index])
            // A failed row is not done: its content is sent again (into the same row) so it can be archived. A
            // deleted row is history: the same content coming again is stored again, as a new version.
            if let latest = latest[index], latest.holdsContent(size: file.sizeBytes, hash: hash) {
                outcomes[index] = .unchanged(fileID: latest.id)
                continue
            }
            // Sent without bytes because a holder existed, but that holder was deleted since: the bytes must come.
            guard holder != nil || record.stagingKey != nil else {
                outcomes[index] = .needsContent
                continue
            }
            let state: FileState = holder == nil ? storedState : .duplicate
            let storage: String? = holder == nil ? storedArea : nil
            let key = holder == nil ? record.stagingKey : nil

            // A path that was unreadable before, or whose archiving failed, gets its content in the same row: no new
            // version for it. A failed row's old staging copy is queued for removal.
            if let latest = latest[index], !latest.deleted, latest.state == .unreadable || (latest.state == .failed && latest.hash == hash) {
                _ = try await connection.query("""
                    INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
                    SELECT 'staging', storage_key, id, 'replaced by a new upload' FROM objectstoragefiles
                    WHERE id = \(latest.id) AND storage = 'staging' AND storage_key IS NOT NULL AND storage_key IS DISTINCT FROM \(key)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                _ = try await connection.query("""
                    UPDATE objectstoragefiles SET hash = \(hash), size_bytes = \(file.sizeBytes), modified_at = \(file.modifiedAt),
                        kind = \(file.kind.rawValue), state = \(state.rawValue), storage = \(storage), storage_key = \(key),
                        duplicate_of = \(holder), spool_id = \(holder == nil ? spoolID : nil)::uuid, error = NULL, details = \(details[index])::jsonb, degraded = \(file.degraded),
                        attempts = 0, run_after = now(), stored_size_bytes = \(holder == nil ? record.stored?.size : nil), stored_hash = \(holder == nil ? record.stored?.sha256 : nil)
                    WHERE id = \(latest.id)
                    """, logger: logger)
                outcomes[index] = holder.map { .duplicate(fileID: latest.id, version: latest.version, of: $0) } ?? .staged(fileID: latest.id, version: latest.version)
                continue
            }
            inserts.append(index)
        }
        guard !inserts.isEmpty else { return outcomes.map { $0! } }

        // One INSERT for the new rows. Arrays cannot carry NULLs here, so absent values travel as a flag or an
        // empty value and become NULL in SQL.
        let new = inserts.map { records[$0] }
        let versions = inserts.map { Int64((latest[$0]?.version ?? 0) + 1) }
        let holderIDs = inserts.map { holders[$0] ?? 0 }
        let inserted = try await connection.query("""
            INSERT INTO objectstoragefiles (source_id, name, path, raw_path, kind, version, size_bytes, hash, modified_at,
                state, storage, storage_key, duplicate_of, details, degraded, stored_size_bytes, stored_hash, spool_id)
            SELECT source_id, name, path, CASE WHEN has_raw_path THEN raw_path END, kind, version, size_bytes, hash,
                CASE WHEN has_modified_at THEN modified_at END,
                CASE WHEN holder = 0 THEN \(storedState.rawValue) ELSE 'duplicate' END, CASE WHEN holder = 0 THEN \(storedArea) END,
                CASE WHEN holder = 0 THEN staging_key END, NULLIF(holder, 0), details::jsonb, degraded,
                CASE WHEN holder = 0 AND stored_hash <> '' THEN stored_size END, CASE WHEN holder = 0 AND stored_hash <> '' THEN stored_hash END,
                CASE WHEN holder = 0 THEN \(spoolID)::uuid END
            FROM unnest(\(new.map(\.file.sourceID))::bigint[], \(new.map(\.file.name))::text[], \(new.map(\.file.path))::text[],
                \(new.map { $0.file.rawPath != nil })::boolean[], \(new.map { ByteBuffer(bytes: $0.file.rawPath ?? []) })::bytea[],
                \(new.map(\.file.kind.rawValue))::text[], \(versions)::bigint[], \(new.map(\.file.sizeBytes))::bigint[], \(new.map(\.hash))::text[],
                \(new.map { $0.file.modifiedAt != nil })::boolean[], \(new.map { $0.file.modifiedAt ?? Date(timeIntervalSince1970: 0) })::timestamptz[],
                \(holderIDs)::bigint[], \(new.map { $0.stagingKey ?? "" })::text[], \(inserts.map { details[$0] })::text[],
                \(new.map(\.file.degraded))::boolean[], \(new.map { $0.stored?.size ?? 0 })::bigint[], \(new.map { $0.stored?.sha256 ?? "" })::text[])
                AS n(source_id, name, path, has_raw_path, raw_path, kind, version, size_bytes, hash, has_modified_at, modified_at,
                     holder, staging_key, details, degraded, stored_size, stored_hash)
            RETURNING id, source_id, path
            """, logger: logger)
        var ids: [String: Int64] = [:]
        for try await (id, sourceID, path) in inserted.decode((Int64, Int64, String).self) {
            ids["\(sourceID):\(path)"] = id
        }
        for (position, index) in inserts.enumerated() {
            let record = records[index]
            guard let id = ids["\(record.file.sourceID):\(record.file.path)"] else {
                throw CatalogError(.migrationFailed, "the row for \(record.file.path) was not returned")
            }
            let version = Int(versions[position])
            outcomes[index] = holders[index].map { .duplicate(fileID: id, version: version, of: $0) } ?? .staged(fileID: id, version: version)
        }
        return outcomes.map { $0! }
    }

    /// Records a file whose bytes could not be read (after retries), with the error.
    public func recordUnreadable(_ file: IngestedFile, error: String) async throws -> Int64 {
        try await CatalogError.wrapping("record the unreadable file") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                try await ContentLocks.lock(hashes: [], paths: [(file.path, file.sourceID)], on: connection, logger: logger)
                let latest = try await latestVersion(sourceID: file.sourceID, path: file.path, on: connection)
                if let latest, latest.state == .unreadable, !latest.deleted {
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
    }

    /// Closes a run: counts for the source and its finish time. Videos of the source that wait for its upload to
    /// finish (the parts of a DVD title set, the clips of an AVCHD recording) are made claimable at once.
    public func finishSource(_ sourceID: Int64, counts: SourceCounts) async throws {
        try await CatalogError.wrapping("finish the source") {
            _ = try await client.catalogQuery(Self.finishSourceQuery(sourceID, counts: counts), logger: logger)
        }
    }

    /// The statement of ``finishSource(_:counts:)``, for a caller's transaction (a browser upload run's end).
    static func finishSourceQuery(_ sourceID: Int64, counts: SourceCounts) -> PostgresQuery {
        """
        WITH woken AS (
            UPDATE objectstoragefiles SET run_after = now()
            WHERE source_id = \(sourceID) AND kind = 'video' AND state = 'staged' AND run_after > now() AND lease_owner IS NULL
            RETURNING 1)
        UPDATE sources SET finished_at = now(), files_seen = \(counts.filesSeen), bytes_seen = \(counts.bytesSeen),
            files_stored = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state NOT IN ('duplicate', 'unreadable', 'failed')),
            files_duplicate = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state = 'duplicate'),
            files_unreadable = (SELECT count(*) FROM objectstoragefiles WHERE source_id = \(sourceID) AND state = 'unreadable'),
            files_skipped = \(counts.filesSkipped)
        WHERE id = \(sourceID)
        """
    }

    private func latestVersion(sourceID: Int64, path: String, on connection: CatalogConnection?) async throws -> CataloguedFile? {
        let query: PostgresQuery = """
            SELECT id, version, size_bytes, modified_at, hash, state,
                (deleted_at IS NOT NULL OR EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = objectstoragefiles.id AND d.processed_at IS NULL))
            FROM objectstoragefiles
            WHERE source_id = \(sourceID) AND path = \(path) ORDER BY version DESC LIMIT 1
            """
        let rows = if let connection { CatalogRows(rows: try await connection.query(query, logger: logger).collect()) } else { try await client.catalogQuery(query, logger: logger) }
        for try await (id, version, size, modified, hash, state, deleted) in rows.decode((Int64, Int, Int64, Date?, String?, String, Bool).self) {
            return CataloguedFile(
                id: id, version: version, sizeBytes: size, modifiedAt: modified, hash: hash, state: FileState(rawValue: state) ?? .failed,
                deleted: deleted)
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
