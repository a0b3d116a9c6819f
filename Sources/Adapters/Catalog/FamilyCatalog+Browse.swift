import Foundation
import PipelineCore
import PostgresNIO

/// A source's page: who owns it, its files per state (duplicates judged by their holder), how far it is from
/// archived, and the last audit's verdict.
public struct FamilySourceOverview: Sendable {
    public let id: Int64
    public let label: String
    public let owner: String?
    public let note: String?
    public let states: [String: Int]
    public let completion: SourceCompletion
    public let lastAudit: SourceAuditRecord?
    /// The newest time a live file of the source was added or archived: an audit older than this is out of date.
    public let lastChange: Date?
}

/// One row of a folder listing or a search: the newest version of a path.
public struct FamilyListedFile: Sendable, Hashable {
    public let id: Int64
    public let path: String
    public let version: Int
    public let versions: Int
    public let size: Int64
    public let state: String
    public let downloadable: Bool
}

/// A sub-folder of a listing, with what it holds (newest versions, at any depth).
public struct FamilyListedFolder: Sendable, Hashable {
    public let name: String
    public let files: Int
    public let bytes: Int64
}

/// Everything the file page shows.
public struct FamilyFileDetails: Sendable {
    public let id: Int64
    public let sourceLabel: String
    public let path: String
    public let version: Int
    public let kind: String
    public let size: Int64
    public let hash: String?
    public let state: String
    public let effectiveState: String
    public let error: String?
    public let storage: String?
    public let storageKey: String?
    public let archiveKey: String?
    public let bundleID: Int64?
    public let bundleOffset: Int64?
    public let storedSize: Int64?
    public let tier: String
    public let encrypted: Bool
    public let createdAt: Date
    public let archivedAt: Date?
    /// The row holding a duplicate's content, when the caller may see it (nil also for one they may not).
    public let duplicateOf: Int64?
    public let duplicateOfHidden: Bool
    /// A raw video's transcode, or a transcode's original, when the caller may see it.
    public let transcodeID: Int64?
    public let originalID: Int64?
    /// Every live version of the path: (id, version, state).
    public let versions: [(id: Int64, version: Int, state: String)]
    public let downloadable: Bool
}

extension FamilyCatalog {
    /// `label`'s overview, or nil when there is no such source or the user may not see it.
    public func overview(ofSource label: String, visibleTo user: AccountUser) async throws -> FamilySourceOverview? {
        try await CatalogError.wrapping("read the source's overview") {
            let isAdmin = user.role == .admin
            var found: (id: Int64, owner: String?, note: String?)?
            for try await (id, owner, note) in try await client.catalogQuery("""
                SELECT s.id, u.name, s.note FROM sources s LEFT JOIN users u ON u.id = s.owner_id
                WHERE s.label = \(label) AND (\(isAdmin) OR s.owner_id = \(user.id))
                """, logger: logger).decode((Int64, String?, String?).self) {
                found = (id, owner, note)
            }
            guard let found else { return nil }
            var states: [String: Int] = [:]
            var lastChange: Date?
            // Only a duplicate's state depends on another row: the rest are counted as they are, so that the holders'
            // join (a scan of the whole table once a source is large) is made for the duplicates alone.
            for try await (state, count, changed) in try await client.catalogQuery("""
                SELECT state, sum(files)::bigint, max(changed) FROM (
                    SELECT f.state, count(*) AS files, max(greatest(f.created_at, f.archived_at)) AS changed
                    FROM objectstoragefiles f
                    WHERE f.source_id = \(found.id) AND f.deleted_at IS NULL AND f.state <> 'duplicate'
                    GROUP BY f.state
                    UNION ALL
                    SELECT \(unescaped: EffectiveState.sql), 1, greatest(f.created_at, f.archived_at)
                    FROM objectstoragefiles f \(unescaped: EffectiveState.holderJoin)
                    WHERE f.source_id = \(found.id) AND f.deleted_at IS NULL AND f.state = 'duplicate') AS parts
                GROUP BY state
                """, logger: logger).decode((String, Int64, Date?).self) {
                states[state] = Int(count)
                if let changed, changed > (lastChange ?? .distantPast) { lastChange = changed }
            }
            let completion = try await SourceCompletion.read(label: label, client: client, logger: logger)
            let audit = try await SourceAudits(client: client, logger: logger).last(sourceID: found.id)
            return FamilySourceOverview(
                id: found.id, label: label, owner: found.owner, note: found.note, states: states, completion: completion, lastAudit: audit,
                lastChange: lastChange)
        }
    }

    /// The folder `prefix` (empty, or ending in `/`) of a source: its sub-folders and the newest version of each file
    /// directly in it.
    public func folder(sourceID: Int64, prefix: String) async throws -> (folders: [FamilyListedFolder], files: [FamilyListedFile]) {
        try await CatalogError.wrapping("list a folder") {
            // Code points, as PostgreSQL's left() and substr() count them (not Swift's grapheme clusters).
            let length = prefix.unicodeScalars.count, start = length + 1
            var folders: [FamilyListedFolder] = []
            for try await (name, files, bytes) in try await client.catalogQuery("""
                SELECT split_part(substr(f.path, \(start)::int), '/', 1), count(*), sum(f.size_bytes)::bigint
                FROM objectstoragefiles f
                WHERE f.source_id = \(sourceID) AND f.deleted_at IS NULL AND left(f.path, \(length)::int) = \(prefix)
                  AND strpos(substr(f.path, \(start)::int), '/') > 0
                  AND NOT EXISTS (SELECT 1 FROM objectstoragefiles n WHERE n.source_id = f.source_id AND n.path = f.path
                                  AND n.version > f.version AND n.deleted_at IS NULL)
                GROUP BY 1 ORDER BY 1
                """, logger: logger).decode((String, Int64, Int64).self) {
                folders.append(FamilyListedFolder(name: name, files: Int(files), bytes: bytes))
            }
            let files = try await listed(.directlyIn(prefix), sourceID: sourceID, limit: 10_000)
            return (folders, files)
        }
    }

    /// Files of a source whose path contains `text` (case-insensitive; `%` and `_` are literal), newest versions.
    public func search(sourceID: Int64, text: String, limit: Int) async throws -> [FamilyListedFile] {
        try await CatalogError.wrapping("search a source") {
            let pattern = "%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            return try await listed(.matching(pattern), sourceID: sourceID, limit: limit)
        }
    }

    private enum Listing {
        /// Files directly in the folder `prefix` (empty, or ending in `/`).
        case directlyIn(String)
        /// Paths matching an ILIKE pattern.
        case matching(String)
    }

    /// Newest live versions only: no live row of the same path has a higher version.
    private static let listedColumns = """
        SELECT f.id, f.path, f.version, (SELECT count(*) FROM objectstoragefiles v WHERE v.source_id = f.source_id AND v.path = f.path AND v.deleted_at IS NULL),
               f.size_bytes, \(EffectiveState.sql), \(readableExpression)
        \(downloadJoins)
        WHERE f.deleted_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM objectstoragefiles n WHERE n.source_id = f.source_id AND n.path = f.path
                          AND n.version > f.version AND n.deleted_at IS NULL)
        """

    private func listed(_ listing: Listing, sourceID: Int64, limit: Int) async throws -> [FamilyListedFile] {
        let query: PostgresQuery
        switch listing {
        case .directlyIn(let prefix):
            query = """
                \(unescaped: Self.listedColumns) AND f.source_id = \(sourceID)
                  AND left(f.path, \(prefix.unicodeScalars.count)::int) = \(prefix) AND strpos(substr(f.path, \(prefix.unicodeScalars.count + 1)::int), '/') = 0
                ORDER BY f.path LIMIT \(limit)
                """
        case .matching(let pattern):
            query = """
                \(unescaped: Self.listedColumns) AND f.source_id = \(sourceID) AND f.path ILIKE \(pattern)
                ORDER BY f.path LIMIT \(limit)
                """
        }
        var files: [FamilyListedFile] = []
        for try await (id, path, version, versions, size, state, downloadable) in try await client.catalogQuery(query, logger: logger)
            .decode((Int64, String, Int32, Int64, Int64, String, Bool).self)
        {
            files.append(FamilyListedFile(id: id, path: path, version: Int(version), versions: Int(versions), size: size, state: state, downloadable: downloadable))
        }
        return files
    }
}
