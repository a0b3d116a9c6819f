import Foundation
import PostgresNIO

extension TranscodeCatalog {
    /// A raw video kept by policy (`--keep-raw`, a DVD's title set): the raw row goes on to the archiver unchanged
    /// (`transcoded`, its own key and hash, `rawDetailsJSON` such as `raw_kept_by_policy`, and
    /// `details.transcode_file_id`; not `kept_raw`, which lists problems for a person to look at), and the verified
    /// transcode becomes a row of its own beside it: same source, `companionPath` (`<raw path>.<ext>`), `regular`,
    /// `staged` with the transcode's key, size and hash, `details.transcode_of` naming the raw row. One transaction, fenced by the raw row's lease, so a worker
    /// that lost its lease adds nothing. Returns the new row's id, or nil when the lease was lost.
    public func recordTranscodeBeside(
        _ item: TranscodeItem, workerID: UUID, resultKey: String, resultSize: Int64, resultHash: String, companionPath: String,
        companionName: String, rawDetailsJSON: String, transcodeDetailsJSON: String
    ) async throws -> Int64? {
        let rawDetails = rawDetailsJSON
        return try await CatalogError.wrapping("record the transcode beside its raw video") {
            try await client.withCatalogTransaction(logger: logger) { connection in
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
                let (companionID, path) = try await insertCompanion(
                    of: item.job.fileID, connection: connection, path: companionPath, name: companionName, resultKey: resultKey, resultSize: resultSize,
                    resultHash: resultHash, detailsJSON: transcodeDetailsJSON)
                _ = try await connection.query("""
                    UPDATE objectstoragefiles SET details = details || jsonb_build_object('transcode_file_id', \(companionID)::bigint, 'transcode_path', \(path)::text)
                    WHERE id = \(item.job.fileID)
                    """, logger: logger)
                return companionID
            }
        }
    }
}

extension TranscodeCatalog {
    /// Inserts a transcode as a row of its own beside raw row `rawID` (same source, `regular`, `staged` with the
    /// result's key, size and hash, `details.transcode_of` plus `detailsJSON`), inside the caller's transaction.
    /// A file of the source's own may have that path (a disc with a VTS_01.mkv): the transcode must never shadow it
    /// in a restore, so it takes `<name>.transcode.<ext>` instead. Only an earlier transcode of this same raw file
    /// is superseded, as a later version. Returns the new row's id and the path it got.
    func insertCompanion(
        of rawID: Int64, connection: CatalogConnection, path companionPath: String, name companionName: String, resultKey: String,
        resultSize: Int64, resultHash: String, detailsJSON: String
    ) async throws -> (id: Int64, path: String) {
        var path = companionPath
        var name = companionName
        let taken = try await connection.query("""
            SELECT EXISTS (SELECT 1 FROM objectstoragefiles o
                           WHERE o.source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(rawID))
                             AND lower(o.path) = lower(\(companionPath))
                             AND coalesce((o.details->>'transcode_of')::bigint, -1) <> \(rawID))
            """, logger: logger)
        for try await isTaken in taken.decode(Bool.self) where isTaken {
            func aside(_ text: String) -> String {
                let ext = (text as NSString).pathExtension
                return (text as NSString).deletingPathExtension + ".transcode" + (ext.isEmpty ? "" : "." + ext)
            }
            path = aside(companionPath)
            name = aside(companionName)
        }
        let inserted = try await connection.query("""
            INSERT INTO objectstoragefiles (source_id, name, path, kind, version, size_bytes, hash, modified_at, state, storage,
                                            storage_key, details)
            SELECT f.source_id, \(name), \(path), 'regular',
                   coalesce((SELECT max(o.version) FROM objectstoragefiles o WHERE o.source_id = f.source_id AND o.path = \(path)), 0) + 1,
                   \(resultSize), \(resultHash), f.modified_at, 'staged', 'staging', \(resultKey),
                   jsonb_build_object('transcode_of', f.id) || \(detailsJSON)::jsonb
            FROM objectstoragefiles f WHERE f.id = \(rawID)
            RETURNING id
            """, logger: logger)
        for try await id in inserted.decode(Int64.self) { return (id, path) }
        throw CatalogError(.queryFailed, "catalog: the transcode row for file \(rawID) was not created")
    }
}

/// One file of a group the transcoder joins (the parts of a DVD title set), as the catalog has it now.
public struct GroupMember: Sendable, Hashable {
    public let fileID: Int64
    public let path: String
    public let state: String
    /// Where its bytes are while it waits in staging (nil once archived, or never stored: unreadable).
    public let stagingKey: String?
    public let sizeBytes: Int64
    public let hash: String?

    public init(fileID: Int64, path: String, state: String, stagingKey: String?, sizeBytes: Int64, hash: String?) {
        self.fileID = fileID
        self.path = path
        self.state = state
        self.stagingKey = stagingKey
        self.sizeBytes = sizeBytes
        self.hash = hash
    }
}

extension TranscodeCatalog {
    /// The newest live version of each of `paths` (compared without case: discs are read on case-insensitive file
    /// systems too) in the source of `item`, and whether the source's upload has finished (before that, a part may
    /// still be on its way).
    public func groupMembers(of item: TranscodeItem, paths: [String]) async throws -> (members: [GroupMember], uploadFinished: Bool) {
        let lowered = paths.map { $0.lowercased() }
        return try await CatalogError.wrapping("read the parts of the video's group") {
            let rows = try await client.catalogQuery("""
                SELECT f.id, f.path, f.state, CASE WHEN f.storage = 'staging' THEN f.storage_key END, f.size_bytes, f.hash,
                       s.finished_at IS NOT NULL
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(item.job.fileID))
                  AND lower(f.path) = ANY(\(lowered)) AND f.deleted_at IS NULL
                  AND f.version = (SELECT max(o.version) FROM objectstoragefiles o WHERE o.source_id = f.source_id AND o.path = f.path)
                ORDER BY f.path
                """, logger: logger)
            var members: [GroupMember] = []
            var finished = false
            for try await row in rows.decode((Int64, String, String, String?, Int64, String?, Bool).self) {
                members.append(GroupMember(fileID: row.0, path: row.1, state: row.2, stagingKey: row.3, sizeBytes: row.4, hash: row.5))
                finished = row.6
            }
            if members.isEmpty { finished = try await uploadFinished(of: item) }
            return (members, finished)
        }
    }

    /// Whether the upload run of `item`'s source has finished (before that, files may still be on their way).
    public func uploadFinished(of item: TranscodeItem) async throws -> Bool {
        try await CatalogError.wrapping("read whether the source's upload has finished") {
            let rows = try await client.catalogQuery(
                "SELECT s.finished_at IS NOT NULL FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id WHERE f.id = \(item.job.fileID)",
                logger: logger)
            for try await finished in rows.decode(Bool.self) { return finished }
            return false
        }
    }

    /// `details.<key>` of the newest live row among `paths` (compared without case) in the source of `item`, the
    /// first of `paths` that has it.
    public func detail(_ key: String, ofFirstOf paths: [String], besides item: TranscodeItem) async throws -> String? {
        let lowered = paths.map { $0.lowercased() }
        return try await CatalogError.wrapping("read a detail of the video's group") {
            let rows = try await client.catalogQuery("""
                SELECT lower(f.path), f.details->>\(key)
                FROM objectstoragefiles f
                WHERE f.source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(item.job.fileID))
                  AND lower(f.path) = ANY(\(lowered)) AND f.deleted_at IS NULL AND f.details ? \(key)
                  AND f.version = (SELECT max(o.version) FROM objectstoragefiles o WHERE o.source_id = f.source_id AND o.path = f.path)
                """, logger: logger)
            var found: [String: String] = [:]
            for try await (path, value) in rows.decode((String, String).self) { found[path] = value }
            return lowered.lazy.compactMap { found[$0] }.first
        }
    }

    /// `details.<key>` of every newest live row directly in `directory` (compared without case) in the source of
    /// `item`, by path.
    public func detailValues(_ key: String, inDirectory directory: String, besides item: TranscodeItem) async throws -> [String: String] {
        // LIKE's own characters in the directory's name are matched literally.
        let escaped = directory.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        let pattern = escaped + "/%"
        return try await CatalogError.wrapping("read the details of the video's neighbours") {
            let rows = try await client.catalogQuery("""
                SELECT f.path, f.details->>\(key)
                FROM objectstoragefiles f
                WHERE f.source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(item.job.fileID))
                  AND lower(f.path) LIKE \(pattern) ESCAPE '\\' AND position('/' IN substr(f.path, \(directory.unicodeScalars.count + 2)::int)) = 0
                  AND f.deleted_at IS NULL AND f.details ? \(key)
                  AND f.version = (SELECT max(o.version) FROM objectstoragefiles o WHERE o.source_id = f.source_id AND o.path = f.path)
                """, logger: logger)
            var values: [String: String] = [:]
            for try await (path, value) in rows.decode((String, String).self) { values[path] = value }
            return values
        }
    }
}
