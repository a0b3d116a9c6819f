import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// One snapshot of a source (a finished run over it), as `uploader snapshots` lists it.
public struct SnapshotSummary: Sendable, Hashable {
    public var number: Int
    public var startedAt: Date
    public var finishedAt: Date
    /// The run saw everything (no walk problems): a path it did not see is gone. An incomplete run keeps what it
    /// could not see as it was.
    public var complete: Bool
    public var files: Int64
    public var bytes: Int64
    /// Paths whose version differs from the previous snapshot (new, changed, or back), and paths gone.
    public var filesChanged: Int64
    public var filesGone: Int64
    /// Bytes the run sent (new content).
    public var bytesUploaded: Int64
}

/// What differs between two snapshots of a source, path by path.
public struct SnapshotDifference: Sendable, Hashable {
    public enum Change: String, Sendable {
        case added = "+", removed = "-", modified = "M"
    }

    public var change: Change
    public var path: String
    /// The version in the older snapshot and in the newer one (nil where the path is not in it).
    public var before: Int?
    public var after: Int?
}

/// A run's open snapshot.
public struct SnapshotHandle: Sendable, Hashable {
    public let id: Int64
    /// Its number within the source (1, 2, …).
    public let number: Int
}

/// Which snapshot: by number, or the last one finished at or before a time (`--as-of`).
public enum SnapshotChoice: Sendable, Hashable {
    case number(Int)
    case asOf(Date)
}

/// Snapshots: begun and finished by the uploader's runs, listed and compared by `uploader snapshots` and `diff`,
/// and read by `restore --snapshot/--as-of`.
public struct SnapshotCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Opens the run's snapshot: the next number of the source. A run that never finished left a snapshot without
    /// changes (they are written only when a run finishes); it is dropped, so numbers count finished runs.
    public func begin(sourceID: Int64) async throws -> SnapshotHandle {
        try await CatalogError.wrapping("begin the run's snapshot") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                try await begin(sourceID: sourceID, on: connection)
            }
        }
    }

    /// ``begin(sourceID:)`` inside the caller's transaction (a browser upload run opens with its first upload).
    func begin(sourceID: Int64, on connection: CatalogConnection) async throws -> SnapshotHandle {
        // One run at a time picks a number for a source.
        _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
        _ = try await connection.query("""
            DELETE FROM snapshots s WHERE s.source_id = \(sourceID) AND s.finished_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM snapshot_changes c WHERE c.snapshot_id = s.id)
            """, logger: logger)
        let rows = try await connection.query("""
            INSERT INTO snapshots (source_id, number)
            SELECT \(sourceID), coalesce(max(number), 0) + 1 FROM snapshots WHERE source_id = \(sourceID)
            RETURNING id, number
            """, logger: logger)
        for try await (id, number) in rows.decode((Int64, Int).self) { return SnapshotHandle(id: id, number: number) }
        throw CatalogError(.migrationFailed, "the snapshot row was not returned")
    }

    /// Closes the run's snapshot: `seenPaths` are the paths the run found (each now has its newest version in the
    /// catalog). Compared with the source's previous finished snapshot, every path whose version differs is
    /// recorded: new or changed, back, or gone (not seen). `unreadPaths` are the run's walk problems (a directory
    /// it could not open or list to the end, an entry it could not inspect): what lies at or under them is kept
    /// as it was, never called gone, and the snapshot is marked incomplete.
    public func finish(snapshotID: Int64, sourceID: Int64, seenPaths: [String], unreadPaths: [String], bytesUploaded: Int64) async throws {
        try await CatalogError.wrapping("finish the run's snapshot") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                try await finish(
                    snapshotID: snapshotID, sourceID: sourceID, seenPaths: seenPaths, unreadPaths: unreadPaths, bytesUploaded: bytesUploaded,
                    on: connection)
            }
        }
    }

    /// ``finish(snapshotID:sourceID:seenPaths:unreadPaths:bytesUploaded:)`` inside the caller's transaction (a browser
    /// upload run closes in the transaction that finds its last upload stored).
    func finish(
        snapshotID: Int64, sourceID: Int64, seenPaths: [String], unreadPaths: [String], bytesUploaded: Int64, on connection: CatalogConnection
    ) async throws {
        let complete = unreadPaths.isEmpty
        _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
        // The seen paths travel as one array and stay a CTE: a temporary table cost PostgreSQL a relation
        // and an index file created and unlinked per run (inode allocation showed in a second run's profile).
        _ = try await connection.query("""
            WITH seen_paths AS MATERIALIZED (SELECT DISTINCT unnest(\(seenPaths)::text[]) AS path),
            this AS (SELECT number FROM snapshots WHERE id = \(snapshotID)),
            previous AS (
                SELECT p.path, p.file_id FROM snapshot_files(\(sourceID),
                    (SELECT coalesce(max(s.number), 0) FROM snapshots s, this
                     WHERE s.source_id = \(sourceID) AND s.finished_at IS NOT NULL AND s.number < this.number)::int) p),
            current AS (
                SELECT w.path, (SELECT f.id FROM objectstoragefiles f
                                WHERE f.source_id = \(sourceID) AND f.path = w.path AND f.deleted_at IS NULL
                                ORDER BY f.version DESC LIMIT 1) AS file_id
                FROM seen_paths w
                UNION ALL
                SELECT p.path, p.file_id FROM previous p
                WHERE NOT EXISTS (SELECT 1 FROM seen_paths w WHERE w.path = p.path)
                  AND EXISTS (SELECT 1 FROM unnest(\(unreadPaths)::text[]) u(path)
                              WHERE u.path = '' OR p.path = u.path OR left(p.path, length(u.path) + 1) = u.path || '/')),
            changes AS (
                INSERT INTO snapshot_changes (snapshot_id, path, file_id)
                SELECT \(snapshotID), coalesce(c.path, p.path), c.file_id
                FROM current c FULL JOIN previous p ON p.path = c.path
                WHERE c.file_id IS DISTINCT FROM p.file_id
                RETURNING file_id)
            UPDATE snapshots SET finished_at = now(), complete = \(complete), bytes_uploaded = \(bytesUploaded),
                files = (SELECT count(*) FROM current WHERE file_id IS NOT NULL),
                bytes = (SELECT coalesce(sum(f.size_bytes), 0) FROM current c JOIN objectstoragefiles f ON f.id = c.file_id),
                files_changed = (SELECT count(*) FROM changes WHERE file_id IS NOT NULL),
                files_gone = (SELECT count(*) FROM changes WHERE file_id IS NULL)
            WHERE id = \(snapshotID)
            """, logger: logger)
    }

    /// Closes the run's snapshot as a copy of snapshot `parent`, without sending or looking up a single path, when
    /// the run found exactly the files its local index recorded after that snapshot (every one trusted, no other
    /// path, no walk problem). Only if the catalog proves the copy right, in the same statement: `parent` is
    /// complete and holds exactly `files` paths (so it is the index's files and nothing else), no snapshot finished
    /// after it recorded a change, and the source's rows are still as `token` says (so every path's newest row is
    /// still the one the index names). Returns false, changing nothing, when any of that fails: the caller then
    /// finishes the snapshot the ordinary way.
    public func finishAsCopy(
        snapshotID: Int64, sourceID: Int64, parent: Int, files: Int, token: UploadIndexToken, bytesUploaded: Int64
    ) async throws -> Bool {
        try await CatalogError.wrapping("finish the run's snapshot") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
                let rows = try await connection.query("""
                    UPDATE snapshots t SET finished_at = now(), complete = true, bytes_uploaded = \(bytesUploaded),
                        files = p.files, bytes = p.bytes, files_changed = 0, files_gone = 0
                    FROM snapshots p, sources s
                    WHERE t.id = \(snapshotID) AND t.source_id = \(sourceID) AND t.finished_at IS NULL
                      AND p.source_id = \(sourceID) AND p.number = \(parent) AND p.number < t.number
                      AND p.finished_at IS NOT NULL AND p.complete AND p.files = \(Int64(files))
                      AND NOT EXISTS (SELECT 1 FROM snapshots later JOIN snapshot_changes c ON c.snapshot_id = later.id
                                      WHERE later.source_id = \(sourceID) AND later.number > p.number AND later.number < t.number
                                        AND later.finished_at IS NOT NULL)
                      AND s.id = \(sourceID) AND s.catalog_epoch = \(token.epoch)
                      AND (SELECT id::text FROM catalog_identity) = \(token.catalogIdentity)
                      AND (SELECT (count(*), coalesce(max(id), 0)) FROM objectstoragefiles WHERE source_id = \(sourceID))
                          = (\(token.rows)::bigint, \(token.maxRowID)::bigint)
                    RETURNING t.id
                    """, logger: logger)
                for try await _ in rows.decode(Int64.self) { return true }
                return false
            }
        }
    }

    /// The source's finished snapshots, oldest first.
    public func list(sourceID: Int64) async throws -> [SnapshotSummary] {
        try await CatalogError.wrapping("list the snapshots") {
            let rows = try await client.catalogQuery("""
                SELECT number, started_at, finished_at, complete, files, bytes, files_changed, files_gone, bytes_uploaded
                FROM snapshots WHERE source_id = \(sourceID) AND finished_at IS NOT NULL ORDER BY number
                """, logger: logger)
            var result: [SnapshotSummary] = []
            for try await (number, started, finished, complete, files, bytes, changed, gone, uploaded)
                in rows.decode((Int, Date, Date, Bool, Int64, Int64, Int64, Int64, Int64).self) {
                result.append(SnapshotSummary(
                    number: number, startedAt: started, finishedAt: finished, complete: complete, files: files, bytes: bytes,
                    filesChanged: changed, filesGone: gone, bytesUploaded: uploaded))
            }
            return result
        }
    }

    /// The number of the snapshot chosen, or nil when there is none (no such number, or nothing finished by then).
    public func resolve(_ choice: SnapshotChoice, sourceID: Int64) async throws -> Int? {
        try await CatalogError.wrapping("find the snapshot") {
            let rows: CatalogRows
            switch choice {
            case .number(let number):
                rows = try await client.catalogQuery(
                    "SELECT number FROM snapshots WHERE source_id = \(sourceID) AND number = \(number) AND finished_at IS NOT NULL", logger: logger)
            case .asOf(let date):
                rows = try await client.catalogQuery("""
                    SELECT max(number) FROM snapshots WHERE source_id = \(sourceID) AND finished_at IS NOT NULL AND finished_at <= \(date)
                    HAVING max(number) IS NOT NULL
                    """, logger: logger)
            }
            for try await number in rows.decode(Int.self) { return number }
            return nil
        }
    }

    /// Path by path, what differs between snapshot `older` and snapshot `newer` of the source.
    public func difference(sourceID: Int64, older: Int, newer: Int) async throws -> [SnapshotDifference] {
        try await CatalogError.wrapping("compare the snapshots") {
            try await client.withCatalogConnection { connection in
                let rows = try await connection.stream("""
                    SELECT coalesce(a.path, b.path), fa.version, fb.version
                    FROM snapshot_files(\(sourceID), \(older)::int) a
                    FULL JOIN snapshot_files(\(sourceID), \(newer)::int) b ON b.path = a.path
                    LEFT JOIN objectstoragefiles fa ON fa.id = a.file_id
                    LEFT JOIN objectstoragefiles fb ON fb.id = b.file_id
                    WHERE a.file_id IS DISTINCT FROM b.file_id
                    ORDER BY coalesce(a.path, b.path) COLLATE "C"
                    """, logger: logger)
                var result: [SnapshotDifference] = []
                for try await (path, before, after) in rows.decode((String, Int?, Int?).self) {
                    let change: SnapshotDifference.Change = before == nil ? .added : after == nil ? .removed : .modified
                    result.append(SnapshotDifference(change: change, path: path, before: before, after: after))
                }
                return result
            }
        }
    }

    /// The source's id by label (nil when there is no such source).
    public func sourceID(label: String) async throws -> Int64? {
        try await CatalogError.wrapping("look up the source") {
            for try await id in try await client.catalogQuery("SELECT id FROM sources WHERE label = \(label)", logger: logger).decode(Int64.self) {
                return id
            }
            return nil
        }
    }
}

/// A version no kept snapshot holds, released by `forget` (a row in `ObjectStorageDeleteLog`).
public struct ReleasedVersion: Sendable, Hashable {
    public var fileID: Int64
    public var path: String
    public var version: Int
    public var size: Int64
}

extension SnapshotCatalog {
    /// Forgets the finished snapshots `numbers` of the source (never its newest: the caller's policy keeps it) and
    /// releases, through `ObjectStorageDeleteLog` and its grace period, every version that only forgotten
    /// snapshots held. Kept snapshots stay exactly as they were: a forgotten snapshot's changes move into the next
    /// snapshot wherever it has none of its own for that path. With `dryRun` nothing changes; the versions that
    /// would be released are returned all the same.
    public func forget(sourceID: Int64, numbers: [Int], dryRun: Bool) async throws -> [ReleasedVersion] {
        try await CatalogError.wrapping("forget snapshots") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
                let forgotten = numbers.sorted()
                let rows = try await connection.query("""
                    WITH finished AS (SELECT number FROM snapshots WHERE source_id = \(sourceID) AND finished_at IS NOT NULL),
                    held_by_forgotten AS (
                        SELECT DISTINCT sf.file_id FROM finished n, LATERAL snapshot_files(\(sourceID), n.number) sf
                        WHERE n.number = ANY(\(forgotten)::int[])),
                    held_by_kept AS (
                        SELECT DISTINCT sf.file_id FROM finished n, LATERAL snapshot_files(\(sourceID), n.number) sf
                        WHERE NOT n.number = ANY(\(forgotten)::int[]))
                    SELECT f.id, f.path, f.version, f.size_bytes FROM objectstoragefiles f
                    WHERE f.id IN (SELECT file_id FROM held_by_forgotten EXCEPT SELECT file_id FROM held_by_kept)
                      AND f.deleted_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = f.id AND d.processed_at IS NULL)
                    ORDER BY f.path COLLATE "C", f.version
                    """, logger: logger)
                var released: [ReleasedVersion] = []
                for try await (id, path, version, size) in rows.decode((Int64, String, Int, Int64).self) {
                    released.append(ReleasedVersion(fileID: id, path: path, version: version, size: size))
                }
                guard !dryRun else { return released }
                for number in forgotten {
                    _ = try await connection.query("""
                        WITH this AS (SELECT id FROM snapshots WHERE source_id = \(sourceID) AND number = \(number) AND finished_at IS NOT NULL),
                        next AS (SELECT id FROM snapshots WHERE source_id = \(sourceID) AND number > \(number) AND finished_at IS NOT NULL
                                 ORDER BY number LIMIT 1)
                        UPDATE snapshot_changes c SET snapshot_id = (SELECT id FROM next)
                        WHERE c.snapshot_id = (SELECT id FROM this) AND (SELECT id FROM next) IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM snapshot_changes x WHERE x.snapshot_id = (SELECT id FROM next) AND x.path = c.path)
                        """, logger: logger)
                    _ = try await connection.query(
                        "DELETE FROM snapshots WHERE source_id = \(sourceID) AND number = \(number) AND finished_at IS NOT NULL", logger: logger)
                }
                // What each remaining snapshot changed, counted again (a merged one holds more changes now).
                _ = try await connection.query("""
                    UPDATE snapshots n SET
                        files_changed = (SELECT count(*) FROM snapshot_changes c WHERE c.snapshot_id = n.id AND c.file_id IS NOT NULL),
                        files_gone = (SELECT count(*) FROM snapshot_changes c WHERE c.snapshot_id = n.id AND c.file_id IS NULL)
                    WHERE n.source_id = \(sourceID) AND n.finished_at IS NOT NULL
                    """, logger: logger)
                _ = try await connection.query(
                    "INSERT INTO objectstoragedeletelog (file_id) SELECT unnest(\(released.map(\.fileID))::bigint[])", logger: logger)
                return released
            }
        }
    }
}
