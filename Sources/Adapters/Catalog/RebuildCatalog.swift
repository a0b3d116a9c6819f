import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// How a file's row stands in a catalog being rebuilt.
public struct RebuiltFileState: Sendable, Hashable {
    public var id: Int64
    public var state: String
    public var hash: String?
    public var archiveKey: String?
    public var rebuiltInFlight: Bool
}

/// An archived member or file found in the archive, to put into a catalog being rebuilt.
public struct RecoveredFile: Sendable, Hashable {
    public var fileID: Int64
    public var sourceLabel: String
    public var path: String
    public var name: String
    public var version: Int
    public var kind: String
    public var originalHash: String
    public var originalSize: Int64
    public var modifiedAt: Date?
    public var archiveKey: String
    public var bundleID: Int64?
    public var bundleOffset: Int64?
    public var storedSize: Int64
    public var storedHash: String
    public var archivedAt: Date?
    public var detailsJSON: String

    public init(fileID: Int64, sourceLabel: String, path: String, name: String, version: Int, kind: String, originalHash: String,
                originalSize: Int64, modifiedAt: Date?, archiveKey: String, bundleID: Int64?, bundleOffset: Int64?, storedSize: Int64,
                storedHash: String, archivedAt: Date?, detailsJSON: String) {
        self.fileID = fileID
        self.sourceLabel = sourceLabel
        self.path = path
        self.name = name
        self.version = version
        self.kind = kind
        self.originalHash = originalHash
        self.originalSize = originalSize
        self.modifiedAt = modifiedAt
        self.archiveKey = archiveKey
        self.bundleID = bundleID
        self.bundleOffset = bundleOffset
        self.storedSize = storedSize
        self.storedHash = storedHash
        self.archivedAt = archivedAt
        self.detailsJSON = detailsJSON
    }
}

/// What importing the catalog export put into the database.
public struct ExportImportCounts: Sendable, Hashable {
    public var sources: Int
    public var bundles: Int
    public var files: Int
    public var deleteRequests: Int
    /// Files that were on their way to the archive when the export was written: now `failed`, to upload again.
    public var inFlight: Int
}

/// The queries of `rebuild-catalog`: everything runs in one transaction, so a rebuild that fails leaves the
/// database empty, never half filled.
public struct RebuildCatalog: Sendable {
    /// The error text of rows that were on their way to the archive when the export was written.
    public static let inFlightError = "rebuild-catalog: this file was not archived yet when the catalog export was written; upload its source again"

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// True when no source, file or bundle is catalogued: the only database a rebuild writes into.
    public func isEmpty() async throws -> Bool {
        try await CatalogError.wrapping("check that the catalog is empty") {
            let query: PostgresQuery = """
                SELECT NOT EXISTS (SELECT 1 FROM sources) AND NOT EXISTS (SELECT 1 FROM objectstoragefiles)
                   AND NOT EXISTS (SELECT 1 FROM bundles) AND NOT EXISTS (SELECT 1 FROM objectstoragedeletelog)
                """
            for try await empty in try await client.catalogQuery(query, logger: logger).decode(Bool.self) { return empty }
            return false
        }
    }

    public func withTransaction<Result: Sendable>(_ body: (RebuildSession) async throws -> Result) async throws -> Result {
        try await CatalogError.wrapping("run the rebuild transaction") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("CREATE TEMP TABLE rebuild_export (ord BIGSERIAL, kind TEXT NOT NULL, doc JSONB NOT NULL) ON COMMIT DROP", logger: logger)
                return try await body(RebuildSession(connection: connection, logger: logger))
            }
        }
    }
}

/// One rebuild transaction.
public struct RebuildSession: @unchecked Sendable {
    let connection: CatalogConnection
    let logger: Logger

    /// Lines of the export (JSON objects of one `type`), held in a temporary table until `applyExport`.
    public func stage(kind: String, documents: [String]) async throws {
        try await CatalogError.wrapping("stage the export's lines") {
            guard !documents.isEmpty else { return }
            _ = try await connection.query(
                "INSERT INTO rebuild_export (kind, doc) SELECT \(kind), d::jsonb FROM unnest(\(documents)::text[]) AS d", logger: logger)
        }
    }

    /// Inserts the staged export rows with their original ids. Files that were not archived yet become `failed`
    /// (their staging copies are not part of the archive); one statement per table, so references between rows
    /// are checked once every row is in. The record is built in `FROM … LATERAL`: written as `SELECT (f(doc)).*`,
    /// PostgreSQL calls `f` once per column (39 for a file: 455 µs a row, 95 of 118 s at 210,000 rows).
    public func applyExport() async throws -> ExportImportCounts {
        try await CatalogError.wrapping("import the catalog export") {
            func count(_ query: PostgresQuery) async throws -> Int {
                var total = 0
                for try await value in try await connection.query(query, logger: logger).decode(Int.self) { total = value }
                return total
            }
            let sources = try await count("""
                WITH inserted AS (INSERT INTO sources SELECT r.* FROM (SELECT DISTINCT ON (doc->>'id') doc FROM rebuild_export WHERE kind = 'source' ORDER BY doc->>'id', ord DESC) latest,
                    LATERAL jsonb_populate_record(NULL::sources, '{"keep_raw": false, "tier": "cold"}'::jsonb || doc) r RETURNING 1)
                SELECT count(*)::int FROM inserted
                """)
            let bundles = try await count("""
                WITH inserted AS (
                    INSERT INTO bundles SELECT r.*
                    FROM (SELECT DISTINCT ON (doc->>'id') doc FROM rebuild_export WHERE kind = 'bundle' ORDER BY doc->>'id', ord DESC) latest,
                    LATERAL jsonb_populate_record(NULL::bundles,
                        CASE WHEN doc->>'state' IN ('open', 'uploading') THEN doc || '{"state": "deleted"}' ELSE doc END) r RETURNING 1)
                SELECT count(*)::int FROM inserted
                """)
            let inFlight = try await count("""
                SELECT count(*)::int FROM (SELECT DISTINCT ON (doc->>'id') doc FROM rebuild_export WHERE kind = 'file' ORDER BY doc->>'id', ord DESC) latest WHERE doc->>'state' IN ('spooled', 'staged', 'transcoding', 'transcoded', 'archiving')
                """)
            let files = try await count("""
                WITH inserted AS (
                    INSERT INTO objectstoragefiles SELECT r.*
                    FROM (SELECT DISTINCT ON (doc->>'id') doc FROM rebuild_export WHERE kind = 'file' ORDER BY doc->>'id', ord DESC) latest,
                    LATERAL jsonb_populate_record(NULL::objectstoragefiles,
                        jsonb_build_object('lease_token', 0, 'run_after', now()) ||
                        CASE WHEN doc->>'state' IN ('spooled', 'staged', 'transcoding', 'transcoded', 'archiving')
                             THEN doc || jsonb_build_object('state', 'failed', 'storage', NULL, 'storage_key', NULL,
                                                            'error', \(RebuildCatalog.inFlightError)::text,
                                                            'details', coalesce(doc->'details', '{}') || '{"rebuilt_in_flight": true}')
                             ELSE doc END) r RETURNING 1)
                SELECT count(*)::int FROM inserted
                """)
            let deletes = try await count("""
                WITH inserted AS (
                    INSERT INTO objectstoragedeletelog SELECT r.*
                    FROM (SELECT DISTINCT ON (doc->>'id') doc FROM rebuild_export WHERE kind = 'delete_request' ORDER BY doc->>'id', ord DESC) latest,
                    LATERAL jsonb_populate_record(NULL::objectstoragedeletelog, doc) r RETURNING 1)
                SELECT count(*)::int FROM inserted
                """)
            return ExportImportCounts(sources: sources, bundles: bundles, files: files, deleteRequests: deletes, inFlight: inFlight)
        }
    }

    /// Bundles by archive key, with their state.
    public func bundles() async throws -> [String: (id: Int64, state: String)] {
        try await CatalogError.wrapping("list the bundles") {
            var result: [String: (id: Int64, state: String)] = [:]
            for try await (key, id, state) in try await connection.query("SELECT archive_key, id, state FROM bundles", logger: logger)
                .decode((String, Int64, String).self) {
                result[key] = (id, state)
            }
            return result
        }
    }

    /// A bundle found through its manifest: keeps its recorded id unless another bundle has it.
    public func insertBundle(id: Int64?, archiveKey: String, manifestKey: String, compression: String, memberCount: Int,
                             rawBytes: Int64, storedBytes: Int64?, hash: String?, storageClass: String?, createdAt: Date?) async throws -> Int64 {
        try await CatalogError.wrapping("insert the recovered bundle") {
            let rows = try await connection.query("""
                INSERT INTO bundles (id, archive_key, manifest_key, state, compression, member_count, raw_bytes, stored_bytes, hash,
                                     storage_class, created_at, archived_at, details)
                VALUES (CASE WHEN \(id)::bigint IS NULL OR EXISTS (SELECT 1 FROM bundles WHERE id = \(id)::bigint)
                             THEN nextval(pg_get_serial_sequence('bundles', 'id')) ELSE \(id)::bigint END,
                        \(archiveKey), \(manifestKey), 'archived', \(compression), \(memberCount), \(rawBytes), \(storedBytes), \(hash),
                        \(storageClass), coalesce(\(createdAt), now()), coalesce(\(createdAt), now()), '{"rebuilt_from": "manifest"}')
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw CatalogError(.migrationFailed, "the bundle row for \(archiveKey) was not returned")
        }
    }

    public func markBundleArchived(id: Int64) async throws {
        try await CatalogError.wrapping("mark the recovered bundle archived") {
            _ = try await connection.query("UPDATE bundles SET state = 'archived', owner = NULL WHERE id = \(id) AND state <> 'archived'", logger: logger)
        }
    }

    public func fileStates(ids: [Int64]) async throws -> [Int64: RebuiltFileState] {
        try await CatalogError.wrapping("read the files' states") {
            var result: [Int64: RebuiltFileState] = [:]
            guard !ids.isEmpty else { return result }
            for try await (id, state, hash, key, inFlight) in try await connection.query("""
                SELECT id, state, hash, archive_key, coalesce((details->>'rebuilt_in_flight')::boolean, false)
                FROM objectstoragefiles WHERE id = ANY(\(ids))
                """, logger: logger).decode((Int64, String, String?, String?, Bool).self) {
                result[id] = RebuiltFileState(id: id, state: state, hash: hash, archiveKey: key, rebuiltInFlight: inFlight)
            }
            return result
        }
    }

    /// The `sources` row for a label found only in a manifest.
    public func sourceID(label: String) async throws -> Int64 {
        try await CatalogError.wrapping("find or create the source") {
            let rows = try await connection.query("""
                WITH found AS (SELECT id FROM sources WHERE label = \(label)),
                     created AS (INSERT INTO sources (label, origin, note) SELECT \(label), 'rebuild-catalog', 'recovered from bundle manifests'
                                 WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id)
                SELECT id FROM found UNION ALL SELECT id FROM created
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw CatalogError(.migrationFailed, "the sources row for \(label) was not returned")
        }
    }

    /// Inserts an archived row found in the archive but not in the export. False when its id, or its source,
    /// path and version, are taken.
    public func insertArchived(_ file: RecoveredFile, sourceID: Int64) async throws -> Bool {
        try await CatalogError.wrapping("insert the recovered file") {
            let rows = try await connection.query("""
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, version, size_bytes, hash, modified_at, state, storage,
                    storage_key, archive_key, bundle_id, bundle_offset, stored_size_bytes, stored_hash, archived_at, details)
                VALUES (\(file.fileID), \(sourceID), \(file.name), \(file.path), \(file.kind), \(file.version), \(file.originalSize),
                    \(file.originalHash), \(file.modifiedAt), 'archived', 'archive', \(file.archiveKey), \(file.archiveKey), \(file.bundleID),
                    \(file.bundleOffset), \(file.storedSize), \(file.storedHash), coalesce(\(file.archivedAt), now()), \(file.detailsJSON)::jsonb)
                ON CONFLICT DO NOTHING
                RETURNING id
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// A row the export saw on its way to the archive, found archived: it gets where its content is.
    public func markArchived(_ file: RecoveredFile) async throws -> Bool {
        try await CatalogError.wrapping("mark the recovered file archived") {
            let rows = try await connection.query("""
                UPDATE objectstoragefiles SET state = 'archived', storage = 'archive', storage_key = \(file.archiveKey),
                    archive_key = \(file.archiveKey), bundle_id = \(file.bundleID), bundle_offset = \(file.bundleOffset),
                    stored_size_bytes = \(file.storedSize), stored_hash = \(file.storedHash), archived_at = coalesce(\(file.archivedAt), now()),
                    error = NULL, details = (details - 'rebuilt_in_flight') || \(file.detailsJSON)::jsonb
                WHERE id = \(file.fileID) AND state <> 'archived' AND hash = \(file.originalHash)
                RETURNING id
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// The archive keys that archived rows name, each once (as many as there are archive objects, not rows).
    public func archivedKeys() async throws -> Set<String> {
        try await CatalogError.wrapping("list the archived keys") {
            var result = Set<String>()
            for try await key in try await connection.query(
                "SELECT DISTINCT archive_key FROM objectstoragefiles WHERE state = 'archived' AND deleted_at IS NULL", logger: logger
            ).decode(String.self) {
                result.insert(key)
            }
            return result
        }
    }

    /// Marks failed every archived row whose archive object is not among `present` (the archive's listing), naming
    /// the object in the row's error, and returns each missing object with its number of rows. The comparison runs
    /// in PostgreSQL, so memory follows the objects, not the rows.
    public func markMissing(present: some Collection<String>) async throws -> [(key: String, files: Int)] {
        try await CatalogError.wrapping("mark the missing files failed") {
            _ = try await connection.query("CREATE TEMP TABLE rebuild_present (key TEXT PRIMARY KEY) ON COMMIT DROP", logger: logger)
            let keys = Array(present)
            for start in stride(from: 0, to: keys.count, by: 10_000) {
                let chunk = Array(keys[start ..< min(keys.count, start + 10_000)])
                _ = try await connection.query("INSERT INTO rebuild_present SELECT unnest(\(chunk)::text[]) ON CONFLICT DO NOTHING", logger: logger)
            }
            _ = try await connection.query("ANALYZE rebuild_present", logger: logger)
            var missing: [(key: String, files: Int)] = []
            for try await (key, files) in try await connection.query("""
                WITH failed AS (
                    UPDATE objectstoragefiles AS f SET state = 'failed', storage = NULL, storage_key = NULL,
                        error = 'rebuild-catalog: the archive object ' || f.archive_key || ' is missing from the archive'
                    WHERE f.state = 'archived' AND f.deleted_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM rebuild_present p WHERE p.key = f.archive_key)
                    RETURNING f.archive_key)
                SELECT archive_key, count(*)::int FROM failed GROUP BY archive_key ORDER BY archive_key
                """, logger: logger).decode((String, Int).self) {
                missing.append((key, files))
            }
            return missing
        }
    }

    /// Sequences continue after the highest id imported, so new rows never collide with recovered ones.
    public func resetSequences() async throws {
        try await CatalogError.wrapping("reset the id sequences") {
            for table in ["sources", "bundles", "objectstoragefiles", "objectstoragedeletelog"] {
                _ = try await connection.query(PostgresQuery(unsafeSQL: """
                    SELECT setval(pg_get_serial_sequence('\(table)', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM \(table)
                    """), logger: logger)
            }
        }
    }
}
