import Foundation
import PostgresNIO

/// Where the bytes of a file the caller may download are.
public struct FamilyDownload: Sendable, Hashable {
    public let path: String
    public let size: Int64
    /// The SHA-256 the streamed bytes must have (empty for an unreadable file, which has no bytes to download).
    public let hash: String
    /// The staging key holding exactly the original bytes; nil when the file needs a restore (or cannot be read
    /// from the browser yet: encrypted sources, archived content).
    public let stagingKey: String?
}

extension FamilyCatalog {
    /// The rows a file's download reads: the file `f` of source `s`, and for a duplicate the row `h` holding its content.
    static let downloadJoins = """
        FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
        LEFT JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN f.duplicate_of ELSE f.id END
        LEFT JOIN sources hs ON hs.id = h.source_id
        """

    /// The staging key when the current copy is the original bytes in staging, readable now: a staged file (or a
    /// duplicate whose holder is staged) of sources without encryption. Archived content needs the restore path
    /// (not built for the browser yet), so it has none.
    static let stagingKeyExpression = """
        CASE WHEN h.state = 'staged' AND h.storage = 'staging' AND h.storage_key IS NOT NULL AND h.deleted_at IS NULL
                  AND h.hash = f.hash AND s.encryption IS NULL AND hs.encryption IS NULL
             THEN h.storage_key END
        """

    /// The download of file `id`, or nil when there is no such file or the user may not see it.
    public func download(fileID: Int64, visibleTo user: AccountUser) async throws -> FamilyDownload? {
        try await CatalogError.wrapping("look up a download") {
            let isAdmin = user.role == .admin
            let rows = try await client.query("""
                SELECT f.path, f.size_bytes, f.hash, \(unescaped: Self.stagingKeyExpression)
                \(unescaped: Self.downloadJoins)
                WHERE f.id = \(fileID) AND f.deleted_at IS NULL AND (\(isAdmin) OR s.owner_id = \(user.id))
                """, logger: logger)
            for try await (path, size, hash, key) in rows.decode((String, Int64, String?, String?).self) {
                return FamilyDownload(path: path, size: size, hash: hash ?? "", stagingKey: hash == nil ? nil : key)
            }
            return nil
        }
    }
}
