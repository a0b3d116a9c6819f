import Foundation
import PipelineCore
import PostgresNIO

extension FamilyCatalog {
    /// File `id`'s details, or nil when there is no such live file or the user may not see it. Rows it links to (the
    /// holder of a duplicate's content, a transcode, an original) are named only when the caller may see them too.
    public func fileDetails(id: Int64, visibleTo user: AccountUser) async throws -> FamilyFileDetails? {
        try await CatalogError.wrapping("read a file's details") {
            let isAdmin = user.role == .admin
            let visible = "(\(isAdmin) OR vs.owner_id = \(user.id))"
            // A linked row is shown only if its source is visible to the caller.
            func linked(_ column: String) -> String {
                "(SELECT v.id FROM objectstoragefiles v JOIN sources vs ON vs.id = v.source_id WHERE v.id = \(column) AND v.deleted_at IS NULL AND \(visible))"
            }
            let rows = try await client.catalogQuery("""
                SELECT f.id, s.label, f.path, f.version, f.kind, f.size_bytes, f.hash, f.state, \(unescaped: EffectiveState.sql), f.error,
                       f.storage, f.storage_key, f.archive_key, f.bundle_id, f.bundle_offset, f.stored_size_bytes, s.tier,
                       s.encryption IS NOT NULL, f.created_at, f.archived_at, f.duplicate_of,
                       \(unescaped: linked("f.duplicate_of")), \(unescaped: linked("(f.details->>'transcode_file_id')::bigint")),
                       \(unescaped: linked("(f.details->>'transcode_of')::bigint"))
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id \(unescaped: EffectiveState.holderJoin)
                WHERE f.id = \(id) AND f.deleted_at IS NULL AND (\(isAdmin) OR s.owner_id = \(user.id))
                """, logger: logger)
            typealias Row = (
                Int64, String, String, Int32, String, Int64, String?, String, String, String?, String?, String?, String?, Int64?, Int64?, Int64?, String,
                Bool, Date, Date?, Int64?, Int64?, Int64?, Int64?
            )
            var found: Row?
            for try await row in rows.decode(Row.self) { found = row }
            guard let row = found else { return nil }
            var versions: [(id: Int64, version: Int, state: String)] = []
            for try await (versionID, version, state) in try await client.catalogQuery("""
                SELECT v.id, v.version, v.state FROM objectstoragefiles v JOIN objectstoragefiles f ON f.source_id = v.source_id AND f.path = v.path
                WHERE f.id = \(id) AND v.deleted_at IS NULL ORDER BY v.version
                """, logger: logger).decode((Int64, Int32, String).self) {
                versions.append((versionID, Int(version), state))
            }
            let download = try await download(fileID: id, visibleTo: user)
            return FamilyFileDetails(
                id: row.0, sourceLabel: row.1, path: row.2, version: Int(row.3), kind: row.4, size: row.5, hash: row.6, state: row.7,
                effectiveState: row.8, error: row.9, storage: row.10, storageKey: row.11, archiveKey: row.12, bundleID: row.13, bundleOffset: row.14,
                storedSize: row.15, tier: row.16, encrypted: row.17, createdAt: row.18, archivedAt: row.19, duplicateOf: row.21,
                duplicateOfHidden: row.20 != nil && row.21 == nil, transcodeID: row.22, originalID: row.23, versions: versions,
                downloadable: download?.read != nil)
        }
    }
}
