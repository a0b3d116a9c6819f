import Foundation
import PostgresNIO

/// Where the bytes of a file the caller may download are, and what they must be.
public struct FamilyDownload: Sendable, Hashable {
    public enum Read: Sendable, Hashable {
        /// The original bytes, whole, in staging.
        case staging(key: String)
        /// A browser restore's plain copy of the archive object in staging (`cache/…`): the bytes at `offset`
        /// (a member's place in its bundle's tar; 0 for a file stored alone).
        case cached(key: String, offset: Int64)
    }

    /// The name to save under: the path's last part, with the transcode's extension for a transcoded video (its
    /// bytes are that container's) and `.tar` for a git repository kept whole.
    public let name: String
    public let path: String
    /// The bytes served and their SHA-256 (the stored bytes: a transcode's for a transcoded video; empty for an
    /// unreadable file, which has no bytes).
    public let size: Int64
    public let hash: String
    public let modifiedAt: Date?
    /// nil when the file needs a restore first (or cannot be read from the browser: an encrypted source).
    public let read: Read?

    /// The staging key holding exactly the original bytes, when that is how the file is read.
    public var stagingKey: String? {
        if case .staging(let key) = read { return key }
        return nil
    }
}

extension FamilyCatalog {
    /// The rows a file's download reads: the file `f` of source `s`; the row `h` holding its content (itself, or
    /// for a duplicate the end of its chain); and `c`, a live browser restore's cached copy of `h`'s archive object.
    static let downloadJoins = """
        FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
        LEFT JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN content_holder(f.id) ELSE f.id END
        LEFT JOIN sources hs ON hs.id = h.source_id
        \(cachedCopyJoin(preferring: "NULL::bigint"))
        """

    /// `c`: a live browser restore's cached copy of `h`'s archive object, restore `preferring`'s own first (any
    /// live restore's copy has the same bytes; the cache is shared by whoever may read the file).
    static func cachedCopyJoin(preferring restore: String) -> String {
        """
        LEFT JOIN LATERAL (
            SELECT o.cache_key FROM browser_restore_objects o JOIN browser_restores r ON r.id = o.restore_id
            WHERE o.archive_key = h.archive_key AND o.cache_key IS NOT NULL AND r.state = 'ready' AND r.cached_until > now()
            ORDER BY coalesce(o.restore_id = \(restore), false) DESC LIMIT 1
        ) c ON h.state = 'archived'
        """
    }

    /// The staging key when the current copy is the original bytes in staging, readable now: a staged file (or a
    /// duplicate whose holder is staged) of sources without encryption.
    static let stagingKeyExpression = """
        CASE WHEN h.state = 'staged' AND h.storage = 'staging' AND h.storage_key IS NOT NULL AND h.deleted_at IS NULL
                  AND h.hash = f.hash AND s.encryption IS NULL AND hs.encryption IS NULL
             THEN h.storage_key END
        """

    /// The cached copy's key when the content is archived and a browser restore holds it. An encrypted source's
    /// stored bytes are age files the server cannot open, so they never count.
    static let cacheKeyExpression = """
        CASE WHEN h.state = 'archived' AND h.deleted_at IS NULL AND h.stored_hash IS NOT NULL AND h.stored_size_bytes IS NOT NULL
                  AND s.encryption IS NULL AND hs.encryption IS NULL
             THEN c.cache_key END
        """

    /// Whether the file can be downloaded now.
    static let readableExpression = "((\(stagingKeyExpression)) IS NOT NULL OR (\(cacheKeyExpression)) IS NOT NULL)"

    /// The columns `download(row:)` reads, in order.
    static let downloadColumns = """
        f.path, f.size_bytes, f.hash, extract(epoch FROM f.modified_at)::float8, \(stagingKeyExpression), \(cacheKeyExpression),
        coalesce(h.bundle_offset, 0), h.stored_size_bytes, h.stored_hash,
        h.details->'transcode'->>'container', f.details->>'git_repository'
        """

    typealias DownloadRow = (String, Int64, String?, Double?, String?, String?, Int64, Int64?, String?, String?, String?)

    static func download(_ row: DownloadRow) -> FamilyDownload {
        let (path, size, hash, modified, stagingKey, cacheKey, offset, storedSize, storedHash, container, gitRepository) = row
        var name = (path as NSString).lastPathComponent
        let modifiedAt = modified.map { Date(timeIntervalSince1970: $0) }
        guard let hash else {
            return FamilyDownload(name: name, path: path, size: size, hash: "", modifiedAt: modifiedAt, read: nil)
        }
        if let stagingKey {
            return FamilyDownload(name: name, path: path, size: size, hash: hash, modifiedAt: modifiedAt, read: .staging(key: stagingKey))
        }
        if let cacheKey, let storedSize, let storedHash {
            if let container {
                let ext = container == "matroska" ? "mkv" : "mp4"
                if (name as NSString).pathExtension.lowercased() != ext { name += "." + ext }
            } else if gitRepository != nil {
                name += ".tar"
            }
            return FamilyDownload(name: name, path: path, size: storedSize, hash: storedHash, modifiedAt: modifiedAt, read: .cached(key: cacheKey, offset: offset))
        }
        return FamilyDownload(name: name, path: path, size: size, hash: hash, modifiedAt: modifiedAt, read: nil)
    }

    /// The download of file `id`, or nil when there is no such file or the user may not see it.
    public func download(fileID: Int64, visibleTo user: AccountUser) async throws -> FamilyDownload? {
        try await CatalogError.wrapping("look up a download") {
            let isAdmin = user.role == .admin
            let rows = try await client.catalogQuery("""
                SELECT \(unescaped: Self.downloadColumns)
                \(unescaped: Self.downloadJoins)
                WHERE f.id = \(fileID) AND f.deleted_at IS NULL AND (\(isAdmin) OR s.owner_id = \(user.id))
                """, logger: logger)
            for try await row in rows.decode(DownloadRow.self) { return Self.download(row) }
            return nil
        }
    }
}
