import Foundation
import PipelineCore
import PostgresNIO

/// Deleting from the family pages: a request in `ObjectStorageDeleteLog` (the archiver carries it out after its
/// grace period), and "undo" while it has not been carried out: the request is closed as undone (`processed_at`,
/// `outcome`), never removed, so the log keeps the whole history.
extension FamilyCatalog {
    /// Requests the deletion of live files: file `fileID`, or every live file of `sourceLabel`. Returns how many new
    /// requests were made (files already requested are left as they are), or nil when the caller may not see it.
    public func requestDelete(fileID: Int64? = nil, sourceLabel: String? = nil, visibleTo user: AccountUser) async throws -> Int? {
        try await CatalogError.wrapping("request a delete") {
            guard let targets = try await liveFiles(fileID: fileID, sourceLabel: sourceLabel, user: user) else { return nil }
            guard !targets.isEmpty else { return 0 }
            let rows = try await client.catalogQuery("""
                INSERT INTO objectstoragedeletelog (file_id)
                SELECT t.id FROM unnest(\(targets)::bigint[]) AS t(id)
                WHERE NOT EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = t.id AND d.processed_at IS NULL)
                RETURNING id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }

    /// Closes pending requests as undone (file `fileID`, or every file of `sourceLabel`). A request the archiver is
    /// carrying out at this moment is waited for, and then is no longer pending: it is not undone. Returns how many
    /// were undone, or nil when the caller may not see it.
    public func undoDelete(fileID: Int64? = nil, sourceLabel: String? = nil, visibleTo user: AccountUser) async throws -> Int? {
        try await CatalogError.wrapping("undo a delete") {
            guard let targets = try await liveFiles(fileID: fileID, sourceLabel: sourceLabel, user: user) else { return nil }
            let rows = try await client.catalogQuery("""
                UPDATE objectstoragedeletelog SET processed_at = greatest(now(), requested_at), outcome = \("undone by " + user.name)
                WHERE file_id = ANY(\(targets)::bigint[]) AND processed_at IS NULL
                RETURNING id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }

    /// When the pending delete of each of a source's files was requested (files without one are absent).
    public func pendingDeletes(sourceID: Int64) async throws -> [Int64: Date] {
        try await CatalogError.wrapping("read pending deletes") {
            var pending: [Int64: Date] = [:]
            for try await (id, requested) in try await client.catalogQuery("""
                SELECT d.file_id, min(d.requested_at) FROM objectstoragedeletelog d JOIN objectstoragefiles f ON f.id = d.file_id
                WHERE f.source_id = \(sourceID) AND d.processed_at IS NULL GROUP BY d.file_id
                """, logger: logger).decode((Int64, Date).self) {
                pending[id] = requested
            }
            return pending
        }
    }

    /// When the pending delete of file `fileID` was requested; nil when none is pending.
    public func pendingDelete(fileID: Int64) async throws -> Date? {
        try await CatalogError.wrapping("read a pending delete") {
            for try await requested in try await client.catalogQuery("""
                SELECT min(requested_at) FROM objectstoragedeletelog WHERE file_id = \(fileID) AND processed_at IS NULL
                """, logger: logger).decode(Date?.self) {
                return requested
            }
            return nil
        }
    }

    /// The live files named (one file, or a source's), nil when there is no such thing or the caller may not see it.
    private func liveFiles(fileID: Int64?, sourceLabel: String?, user: AccountUser) async throws -> [Int64]? {
        let isAdmin = user.role == .admin
        var found = false
        var ids: [Int64] = []
        let query: PostgresQuery
        if let fileID {
            query = """
                SELECT s.id, f.id FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.id = \(fileID) AND f.deleted_at IS NULL AND (\(isAdmin) OR s.owner_id = \(user.id))
                """
        } else {
            query = """
                SELECT s.id, f.id FROM sources s LEFT JOIN objectstoragefiles f ON f.source_id = s.id AND f.deleted_at IS NULL
                WHERE s.label = \(sourceLabel ?? "") AND (\(isAdmin) OR s.owner_id = \(user.id))
                """
        }
        for try await (_, id) in try await client.catalogQuery(query, logger: logger).decode((Int64, Int64?).self) {
            found = true
            if let id { ids.append(id) }
        }
        return found ? ids : nil
    }
}
