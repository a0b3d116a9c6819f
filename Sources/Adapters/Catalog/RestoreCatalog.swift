import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What `uploader restore` may be asked for. The filters combine (AND); paths are matched by the caller.
public struct RestoreSelection: Sendable, Hashable {
    public var sourceLabel: String?
    /// Lower-case hex SHA-256 of the original bytes, or of the stored bytes (a transcoded video's).
    public var hash: String?
    /// All versions (a hash selection), not only the newest version of each path.
    public var allVersions: Bool
    /// The source's tree as snapshot N recorded it (needs `sourceLabel`): each path it held, at the version it
    /// had then, files gone since included.
    public var snapshotNumber: Int?

    public init(sourceLabel: String? = nil, hash: String? = nil, allVersions: Bool = false, snapshotNumber: Int? = nil) {
        self.sourceLabel = sourceLabel
        self.hash = hash
        self.allVersions = allVersions
        self.snapshotNumber = snapshotNumber
    }
}

/// One catalogued file with where its content is: its own archive object, or for a duplicate the one of the row
/// that holds its content.
public struct CatalogFileLocation: Sendable, Hashable, Codable {
    public var fileID: Int64
    public var sourceID: Int64
    public var sourceLabel: String
    /// The source is encrypted (`sources.encryption`): the stored bytes are an age file, `hash` is keyed.
    public var encrypted: Bool
    public var path: String
    /// The exact bytes of a path that is not valid UTF-8 (hex), as the uploader recorded them.
    public var rawPathHex: String?
    public var name: String
    public var version: Int
    public var isLatestVersion: Bool
    public var kind: String
    public var state: String
    public var error: String?
    public var degraded: Bool
    /// Seconds since 1970 (microseconds kept).
    public var modifiedAt: Double?
    public var originalHash: String?
    public var originalSize: Int64
    /// The row holding the content (itself unless a duplicate) and its state.
    public var holderID: Int64?
    public var holderState: String?
    public var archiveKey: String?
    public var bundleID: Int64?
    /// Offset of the member's data in the uncompressed tar.
    public var bundleOffset: Int64?
    public var storedSize: Int64?
    public var storedHash: String?
    /// The transcoded video's container (`mp4`, `matroska`), when the stored bytes are a transcode.
    public var transcodeContainer: String?
    public var transcoded: Bool
    public var bundleCompression: String?
    public var bundleHash: String?
    public var bundleStoredBytes: Int64?
    public var bundleState: String?
    public var bundleStorageClass: String?
    public var archivedAt: Double?
    /// A git repository kept whole (`details.git_repository`: `bundle` or `directory`): the stored file is a tar that
    /// restore turns back into the repository's directory.
    public var gitRepository: String?

    enum CodingKeys: String, CodingKey {
        case fileID = "id", sourceID = "source_id", encrypted, sourceLabel = "label", path, rawPathHex = "raw_path", name, version, isLatestVersion = "latest"
        case kind, state, error, degraded, modifiedAt = "modified_at", originalHash = "hash", originalSize = "size"
        case holderID = "holder_id", holderState = "holder_state", archiveKey = "archive_key", bundleID = "bundle_id"
        case bundleOffset = "bundle_offset", storedSize = "stored_size", storedHash = "stored_hash"
        case transcodeContainer = "container", transcoded, bundleCompression = "compression", bundleHash = "bundle_hash"
        case bundleStoredBytes = "bundle_stored_bytes", bundleState = "bundle_state", bundleStorageClass = "storage_class"
        case archivedAt = "archived_at", gitRepository = "git_repository"
    }
}

/// A restore request as recorded (see `restore_requests`).
public struct RecordedRestoreRequest: Sendable, Hashable {
    public var archiveKey: String
    public var tier: String
    public var days: Int
    public var storageClass: String?
    public var sizeBytes: Int64?
    public var requestedAt: Date
    public var expectedReadyAt: Date
    public var state: String
    public var readyAt: Date?
    public var restoredUntil: Date?
    public var checkedAt: Date?
    public var requestedFor: String?
}

/// A source with its files counted by state.
public struct SourceSummary: Sendable, Hashable {
    public var id: Int64
    public var label: String
    public var metadataJSON: String
    public var note: String?
    public var startedAt: Date
    public var finishedAt: Date?
    public var files: Int64
    public var bytes: Int64
    public var storedBytes: Int64
    public var archived: Int64
    public var duplicates: Int64
    public var inProgress: Int64
    public var failed: Int64
    public var unreadable: Int64
    public var deleted: Int64
    /// Read into a spool (`uploader upload --spool`) and not sent to staging yet (a duplicate of such a file too).
    public var spooled: Int64 = 0
    /// Paths the last upload could not read (see `WalkProblems`), and the first few as "path: problem".
    public var walkProblems: Int64 = 0
    public var walkProblemPaths: [String] = []
    /// The source's encryption record (JSON), when it is encrypted, and its videos kept as they are because the
    /// cloud cannot read them to transcode them.
    public var encryptionJSON: String?
    public var videosNotTranscoded: Int64 = 0

    public init(
        id: Int64, label: String, metadataJSON: String, note: String?, startedAt: Date, finishedAt: Date?, files: Int64, bytes: Int64,
        storedBytes: Int64, archived: Int64, duplicates: Int64, inProgress: Int64, failed: Int64, unreadable: Int64, deleted: Int64,
        spooled: Int64 = 0, walkProblems: Int64 = 0, walkProblemPaths: [String] = [], encryptionJSON: String? = nil, videosNotTranscoded: Int64 = 0
    ) {
        (self.id, self.label, self.metadataJSON, self.note, self.startedAt, self.finishedAt) = (id, label, metadataJSON, note, startedAt, finishedAt)
        (self.files, self.bytes, self.storedBytes, self.archived, self.duplicates) = (files, bytes, storedBytes, archived, duplicates)
        (self.inProgress, self.failed, self.unreadable, self.deleted, self.spooled) = (inProgress, failed, unreadable, deleted, spooled)
        (self.walkProblems, self.walkProblemPaths, self.encryptionJSON, self.videosNotTranscoded) = (walkProblems, walkProblemPaths, encryptionJSON, videosNotTranscoded)
    }
}

/// An archive object to verify, with what the catalog expects of it.
public struct ArchiveObjectToVerify: Sendable, Hashable {
    public var archiveKey: String
    public var bundleID: Int64?
    public var manifestKey: String?
    public var size: Int64
    public var sha256: String?
    public var sourceLabels: [String]
    public var lastVerifiedAt: Date?
}

/// The queries of `restore`, `restore-status`, `ls`, `sources` and `verify`.
public struct RestoreCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The same database's snapshots.
    public var snapshots: SnapshotCatalog { SnapshotCatalog(client: client, logger: logger) }

    /// Files matching the selection (not deleted), in label and path order, with where their content is.
    public func files(_ selection: RestoreSelection) async throws -> [CatalogFileLocation] {
        try await CatalogError.wrapping("list the files to restore") {
            try await client.withCatalogConnection { connection in
                let rows = try await connection.stream("""
                    SELECT jsonb_build_object(
                        'id', f.id, 'source_id', s.id, 'encrypted', s.encryption IS NOT NULL, 'label', s.label, 'path', f.path, 'raw_path', encode(f.raw_path, 'hex'), 'name', f.name,
                        'version', f.version,
                        'latest', f.version = (SELECT max(g.version) FROM objectstoragefiles g
                                               WHERE g.source_id = f.source_id AND g.path = f.path AND g.deleted_at IS NULL),
                        'kind', f.kind, 'state', f.state, 'error', f.error, 'degraded', f.degraded,
                        'modified_at', extract(epoch FROM f.modified_at), 'hash', f.hash, 'size', f.size_bytes,
                        'holder_id', h.id, 'holder_state', h.state, 'archive_key', h.archive_key, 'bundle_id', h.bundle_id,
                        'bundle_offset', h.bundle_offset, 'stored_size', h.stored_size_bytes, 'stored_hash', h.stored_hash,
                        'container', h.details->'transcode'->>'container', 'transcoded', coalesce(h.details ? 'transcode', false),
                        'compression', b.compression, 'bundle_hash', b.hash, 'bundle_stored_bytes', b.stored_bytes,
                        'bundle_state', b.state, 'storage_class', b.storage_class, 'archived_at', extract(epoch FROM h.archived_at),
                        'git_repository', f.details->>'git_repository'
                    )::text
                    FROM objectstoragefiles f
                    JOIN sources s ON s.id = f.source_id
                    LEFT JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN content_holder(f.id) ELSE f.id END
                    LEFT JOIN bundles b ON b.id = h.bundle_id
                    WHERE f.deleted_at IS NULL
                      AND (\(selection.sourceLabel)::text IS NULL OR s.label = \(selection.sourceLabel))
                      AND (\(selection.hash)::text IS NULL OR f.hash = \(selection.hash) OR h.stored_hash = \(selection.hash))
                      AND (\(selection.snapshotNumber)::int IS NULL OR f.id IN (
                            SELECT sf.file_id FROM snapshot_files((SELECT id FROM sources WHERE label = \(selection.sourceLabel)), \(selection.snapshotNumber)::int) sf))
                    ORDER BY s.label, f.path, f.version
                    """, logger: logger)
                let decoder = JSONDecoder()
                var result: [CatalogFileLocation] = []
                for try await text in rows.decode(String.self) {
                    var location = try decoder.decode(CatalogFileLocation.self, from: Data(text.utf8))
                    if selection.snapshotNumber != nil {
                        // The snapshot's version of each path is written at the path itself.
                        location.isLatestVersion = true
                        result.append(location)
                    } else if selection.allVersions || location.isLatestVersion {
                        result.append(location)
                    }
                }
                return result
            }
        }
    }

    /// The encryption records (JSON) of these sources, for those that are encrypted.
    public func encryptionRecords(sourceIDs: [Int64]) async throws -> [Int64: String] {
        try await CatalogError.wrapping("read the sources' encryption") {
            var records: [Int64: String] = [:]
            for try await (id, record) in try await client.catalogQuery(
                "SELECT id, encryption::text FROM sources WHERE id = ANY(\(sourceIDs)) AND encryption IS NOT NULL", logger: logger
            ).decode((Int64, String).self) {
                records[id] = record
            }
            return records
        }
    }

    public func sourceExists(_ label: String) async throws -> Bool {
        try await CatalogError.wrapping("look up the source") {
            for try await exists in try await client.catalogQuery("SELECT EXISTS (SELECT 1 FROM sources WHERE label = \(label))", logger: logger).decode(Bool.self) {
                return exists
            }
            return false
        }
    }

    // MARK: restore requests

    public func restoreRequests(keys: [String]? = nil, pendingOnly: Bool = false) async throws -> [RecordedRestoreRequest] {
        try await CatalogError.wrapping("list the restore requests") {
            let rows = try await client.catalogQuery("""
                SELECT archive_key, tier, days, storage_class, size_bytes, requested_at, expected_ready_at, state, ready_at,
                       restored_until, checked_at, requested_for
                FROM restore_requests
                WHERE (\(keys)::text[] IS NULL OR archive_key = ANY(\(keys)::text[])) AND (NOT \(pendingOnly) OR state = 'pending')
                ORDER BY expected_ready_at, archive_key
                """, logger: logger)
            var result: [RecordedRestoreRequest] = []
            for try await row in rows.decode((String, String, Int, String?, Int64?, Date, Date, String, Date?, Date?, Date?, String?).self) {
                result.append(RecordedRestoreRequest(
                    archiveKey: row.0, tier: row.1, days: row.2, storageClass: row.3, sizeBytes: row.4, requestedAt: row.5,
                    expectedReadyAt: row.6, state: row.7, readyAt: row.8, restoredUntil: row.9, checkedAt: row.10, requestedFor: row.11))
            }
            return result
        }
    }

    /// A restore was requested (or found in flight without a record): recorded so no later run asks again.
    public func recordRestoreRequested(
        key: String, tier: String, days: Int, storageClass: String?, size: Int64?, expectedReadyAt: Date, requestedFor: String
    ) async throws {
        try await CatalogError.wrapping("record the restore request") {
            _ = try await client.catalogQuery("""
                INSERT INTO restore_requests (archive_key, tier, days, storage_class, size_bytes, expected_ready_at, requested_for, checked_at)
                VALUES (\(key), \(tier), \(days), \(storageClass), \(size), \(expectedReadyAt), \(requestedFor), now())
                ON CONFLICT (archive_key) DO UPDATE SET
                    tier = EXCLUDED.tier, days = EXCLUDED.days, storage_class = EXCLUDED.storage_class, size_bytes = EXCLUDED.size_bytes,
                    requested_at = now(), expected_ready_at = EXCLUDED.expected_ready_at, state = 'pending', ready_at = NULL,
                    restored_until = NULL, checked_at = now(), requested_for = EXCLUDED.requested_for
                """, logger: logger)
        }
    }

    /// What a HEAD said about a recorded request: still in flight, readable (until a date), or expired.
    public func updateRestoreState(key: String, state: String, restoredUntil: Date?) async throws {
        try await CatalogError.wrapping("update the restore request") {
            _ = try await client.catalogQuery("""
                UPDATE restore_requests SET state = \(state), checked_at = now(),
                    ready_at = CASE WHEN \(state) = 'ready' THEN coalesce(ready_at, now()) ELSE ready_at END,
                    restored_until = coalesce(\(restoredUntil), restored_until)
                WHERE archive_key = \(key)
                """, logger: logger)
        }
    }

    // MARK: ls and sources

    /// Every source with its files counted by state.
    public func sources() async throws -> [SourceSummary] {
        try await CatalogError.wrapping("list the sources") {
            let rows = try await client.catalogQuery("""
                SELECT s.id, s.label, s.metadata::text, s.note, s.started_at, s.finished_at,
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL),
                       coalesce(sum(f.size_bytes) FILTER (WHERE f.deleted_at IS NULL), 0)::bigint,
                       coalesce(sum(f.stored_size_bytes) FILTER (WHERE f.deleted_at IS NULL AND f.state = 'archived'), 0)::bigint,
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.state = 'archived'),
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.effective = 'duplicate'),
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.effective IN ('staged', 'transcoding', 'transcoded', 'archiving')),
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.effective = 'failed'),
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.effective = 'unreadable'),
                       count(f.id) FILTER (WHERE f.deleted_at IS NOT NULL),
                       count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.effective = 'spooled')
                FROM sources s
                LEFT JOIN (SELECT f.*, \(unescaped: EffectiveState.sql) AS effective
                           FROM objectstoragefiles f \(unescaped: EffectiveState.holderJoin)) AS f ON f.source_id = s.id
                GROUP BY s.id ORDER BY s.label
                """, logger: logger)
            var result: [SourceSummary] = []
            for try await row in rows.decode((Int64, String, String, String?, Date, Date?, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
                result.append(SourceSummary(
                    id: row.0, label: row.1, metadataJSON: row.2, note: row.3, startedAt: row.4, finishedAt: row.5, files: row.6,
                    bytes: row.7, storedBytes: row.8, archived: row.9, duplicates: row.10, inProgress: row.11, failed: row.12,
                    unreadable: row.13, deleted: row.14, spooled: row.15))
            }
            let encrypted = try await client.catalogQuery("""
                SELECT s.id, s.encryption::text, count(f.id) FILTER (WHERE f.deleted_at IS NULL AND f.details ? 'video_not_transcoded')
                FROM sources s LEFT JOIN objectstoragefiles f ON f.source_id = s.id
                WHERE s.encryption IS NOT NULL GROUP BY s.id
                """, logger: logger)
            var encryption: [Int64: (String, Int64)] = [:]
            for try await (id, record, videos) in encrypted.decode((Int64, String, Int64).self) { encryption[id] = (record, videos) }
            for index in result.indices {
                guard let (record, videos) = encryption[result[index].id] else { continue }
                result[index].encryptionJSON = record
                result[index].videosNotTranscoded = videos
            }
            let problems = try await WalkProblems.summaries(client: client, logger: logger)
            for index in result.indices {
                guard let summary = problems[result[index].id] else { continue }
                result[index].walkProblems = summary.count
                result[index].walkProblemPaths = summary.sample.map(\.line)
            }
            return result
        }
    }

    // MARK: verify

    /// Archived objects (bundles and files stored alone) with their expected size and SHA-256, the ones checked
    /// longest ago (or never) first. `sourceLabel` keeps objects holding content of that source.
    public func objectsToVerify(sourceLabel: String?) async throws -> [ArchiveObjectToVerify] {
        try await CatalogError.wrapping("list the objects to verify") {
            try await client.withCatalogConnection { connection in
                let rows = try await connection.stream("""
                    WITH objects AS (
                        SELECT b.archive_key, b.id AS bundle_id, b.manifest_key, b.stored_bytes AS size, b.hash AS sha256
                        FROM bundles b WHERE b.state IN ('archived', 'rewriting')
                        UNION ALL
                        SELECT f.archive_key, NULL, NULL, f.stored_size_bytes, f.stored_hash
                        FROM objectstoragefiles f WHERE f.state = 'archived' AND f.bundle_id IS NULL AND f.deleted_at IS NULL
                    ),
                    labels AS (
                        SELECT h.archive_key, array_agg(DISTINCT s.label ORDER BY s.label) AS labels
                        FROM objectstoragefiles f
                        JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN content_holder(f.id) ELSE f.id END
                        JOIN sources s ON s.id = f.source_id
                        WHERE f.deleted_at IS NULL AND h.state = 'archived'
                        GROUP BY h.archive_key
                    )
                    SELECT o.archive_key, o.bundle_id, o.manifest_key, coalesce(o.size, 0)::bigint, o.sha256,
                           coalesce(l.labels, ARRAY[]::text[]), v.verified_at
                    FROM objects o LEFT JOIN labels l ON l.archive_key = o.archive_key
                    LEFT JOIN archive_verifications v ON v.archive_key = o.archive_key
                    WHERE \(sourceLabel)::text IS NULL OR \(sourceLabel) = ANY(l.labels)
                    ORDER BY v.verified_at NULLS FIRST, o.archive_key
                    """, logger: logger)
                var result: [ArchiveObjectToVerify] = []
                for try await row in rows.decode((String, Int64?, String?, Int64, String?, [String], Date?).self) {
                    result.append(ArchiveObjectToVerify(
                        archiveKey: row.0, bundleID: row.1, manifestKey: row.2, size: row.3, sha256: row.4, sourceLabels: row.5, lastVerifiedAt: row.6))
                }
                return result
            }
        }
    }

    public func recordVerification(key: String, outcome: String, detail: String?) async throws {
        try await CatalogError.wrapping("record the verification") {
            _ = try await client.catalogQuery("""
                INSERT INTO archive_verifications (archive_key, verified_at, outcome, detail) VALUES (\(key), now(), \(outcome), \(detail))
                ON CONFLICT (archive_key) DO UPDATE SET verified_at = now(), outcome = EXCLUDED.outcome, detail = EXCLUDED.detail
                """, logger: logger)
        }
    }

    /// How much of the archive was verified, and how long ago the oldest check was.
    public func verificationCoverage() async throws -> (objects: Int64, verifiedWithinDays: [Int: Int64], oldest: Date?) {
        try await CatalogError.wrapping("read the verification coverage") {
            var objects: Int64 = 0
            var within: [Int: Int64] = [:]
            var oldest: Date?
            let rows = try await client.catalogQuery("""
                WITH objects AS (
                    SELECT archive_key FROM bundles WHERE state IN ('archived', 'rewriting')
                    UNION
                    SELECT archive_key FROM objectstoragefiles WHERE state = 'archived' AND bundle_id IS NULL AND deleted_at IS NULL
                )
                SELECT count(*), count(v.verified_at) FILTER (WHERE v.verified_at > now() - interval '30 days'),
                       count(v.verified_at) FILTER (WHERE v.verified_at > now() - interval '365 days'),
                       CASE WHEN count(v.verified_at) = count(*) THEN min(v.verified_at) END
                FROM objects o LEFT JOIN archive_verifications v ON v.archive_key = o.archive_key AND v.outcome <> 'failed'
                """, logger: logger)
            for try await (count, month, year, first) in rows.decode((Int64, Int64, Int64, Date?).self) {
                objects = count
                within = [30: month, 365: year]
                oldest = first
            }
            return (objects, within, oldest)
        }
    }
}
