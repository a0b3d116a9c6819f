import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// Where a browser upload stands (`browser_uploads.state`).
public enum BrowserUploadState: String, Sendable, Hashable {
    /// Bytes are coming; `received` of `length` are acknowledged.
    case receiving
    /// Every byte is here; the server is storing the file into staging and the catalog.
    case storing
    /// The catalog has it (`fileID`, `outcome`).
    case stored
}

/// One upload a member started from the browser (or any tus client): see the `browser_uploads` table.
public struct BrowserUpload: Sendable, Hashable {
    public let id: String
    public let ownerID: Int64
    public let sourceID: Int64
    public let sourceLabel: String
    public let path: String
    public let length: Int64
    public let received: Int64
    /// The `Upload-Metadata` header as the client sent it.
    public let metadata: String
    public let modifiedAt: Date
    public let state: BrowserUploadState
    public let attempts: Int
    /// The last failure to store it (retried), when there was one.
    public let error: String?
    /// Once stored: the path's newest row and what became of it (`staged`, `duplicate`, `unchanged`, `unreadable`).
    public let fileID: Int64?
    public let outcome: String?
    /// When a byte last arrived (or the upload was made): an upload idle too long expires.
    public let updatedAt: Date
}

/// What asking for a new upload gave.
public enum BrowserUploadCreation: Sendable, Hashable {
    case created(BrowserUpload)
    /// The label belongs to someone else (or to no one: a source from before accounts).
    case sourceTaken
    /// The source is encrypted on its uploader's machine: the server holds no key, so it cannot add files.
    case sourceEncrypted
}

/// The browser uploads' statements. Every read a caller makes goes through the owner (`ownerID`), so another
/// member's upload is exactly as absent as one that never existed.
///
/// A *browser run* of a source is the time during which the source has uploads not yet stored: the first upload
/// created while none is open begins it (`finished_at` cleared, a snapshot begun, as `uploader upload` does), and
/// the transaction that stores or terminates its last open upload finishes it (the snapshot of every path the source
/// holds, the counts, `finished_at`), so the source can become fully archived. The source row is locked in both, so
/// an upload created while another run's last upload is being stored either joins that run or begins the next.
public struct BrowserUploadCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    static let columns = """
        u.id, u.owner_id, u.source_id, s.label, u.path, u.length, u.received, u.metadata, u.modified_at, u.state, u.attempts, u.error,
        u.file_id, u.outcome, u.updated_at
        """

    /// A new upload of `length` bytes to `path` in the owner's source `label` (created with `note` when new; an
    /// existing source's note is replaced when `note` is given). Stored uploads older than a week are forgotten.
    public func create(
        id: String, ownerID: Int64, label: String, note: String?, path: String, length: Int64, metadata: String, modifiedAt: Date?
    ) async throws -> BrowserUploadCreation {
        try await CatalogError.wrapping("create a browser upload") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("""
                    INSERT INTO sources (label, owner_id, note, origin) VALUES (\(label), \(ownerID), \(note), 'browser')
                    ON CONFLICT (label) DO NOTHING
                    """, logger: logger)
                var found: (Int64, Int64?, Bool)?
                for try await row in try await connection.query(
                    "SELECT id, owner_id, encryption IS NOT NULL FROM sources WHERE label = \(label) FOR UPDATE", logger: logger
                ).decode((Int64, Int64?, Bool).self) {
                    found = row
                }
                guard let (sourceID, owner, encrypted) = found, owner == ownerID else { return .sourceTaken }
                guard !encrypted else { return .sourceEncrypted }
                if try await openUploads(sourceID: sourceID, on: connection) == 0 {
                    // A new browser run of the source.
                    _ = try await connection.query("""
                        UPDATE sources SET finished_at = NULL, origin = 'browser', note = COALESCE(\(note), note) WHERE id = \(sourceID)
                        """, logger: logger)
                    _ = try await SnapshotCatalog(client: client, logger: logger).begin(sourceID: sourceID, on: connection)
                } else if let note {
                    _ = try await connection.query("UPDATE sources SET note = \(note) WHERE id = \(sourceID)", logger: logger)
                }
                _ = try await connection.query("""
                    DELETE FROM browser_uploads WHERE state = 'stored' AND updated_at < now() - interval '7 days'
                    """, logger: logger)
                _ = try await connection.query("""
                    INSERT INTO browser_uploads (id, owner_id, source_id, path, length, metadata, modified_at)
                    VALUES (\(id), \(ownerID), \(sourceID), \(path), \(length), \(metadata), coalesce(\(modifiedAt), date_trunc('milliseconds', now())))
                    """, logger: logger)
                if length == 0 {
                    // Complete at its creation: nothing will come to say so.
                    _ = try await connection.query("UPDATE browser_uploads SET state = 'storing' WHERE id = \(id)", logger: logger)
                }
                guard let upload = try await fetch(id: id, ownerID: ownerID, on: connection) else {
                    throw CatalogError(.queryFailed, "the new upload was not found")
                }
                return .created(upload)
            }
        }
    }

    /// The upload if `ownerID` owns it (nil: none, or someone else's). Without an owner: any (the server's own work).
    public func upload(id: String, ownerID: Int64?) async throws -> BrowserUpload? {
        try await CatalogError.wrapping("read a browser upload") {
            try await client.withCatalogConnection { connection in try await fetch(id: id, ownerID: ownerID, on: connection) }
        }
    }

    /// The owner's uploads not stored yet, oldest first (the page lists them, to resume after a reload).
    public func openUploads(ownerID: Int64) async throws -> [BrowserUpload] {
        try await CatalogError.wrapping("list open browser uploads") {
            try await decode(try await client.catalogQuery("""
                SELECT \(unescaped: Self.columns) FROM browser_uploads u JOIN sources s ON s.id = u.source_id
                WHERE u.owner_id = \(ownerID) AND u.state <> 'stored' ORDER BY u.created_at, u.id
                """, logger: logger))
        }
    }

    /// Moves the acknowledged offset from `from` to `to` (bytes written and fsynced); the last byte makes the upload
    /// `storing`. False when the row is not at `from` any more (another request moved it, or it was terminated).
    public func advance(id: String, from: Int64, to: Int64) async throws -> Bool {
        try await CatalogError.wrapping("record a browser upload's offset") {
            let rows = try await client.catalogQuery("""
                UPDATE browser_uploads SET received = \(to), updated_at = now(),
                    state = CASE WHEN \(to) = length THEN 'storing' ELSE 'receiving' END, run_after = now()
                WHERE id = \(id) AND state = 'receiving' AND received = \(from) AND \(to) <= length
                RETURNING 1
                """, logger: logger)
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    /// Lowers the acknowledged offset to what the partial file really holds (it was lost or cut: a new disk, a
    /// restored volume), so that the client sends the rest again instead of the server storing a hole.
    public func rewind(id: String, to received: Int64) async throws {
        try await CatalogError.wrapping("rewind a browser upload") {
            _ = try await client.catalogQuery("""
                UPDATE browser_uploads SET received = \(received), state = 'receiving', updated_at = now()
                WHERE id = \(id) AND state <> 'stored' AND received > \(received)
                """, logger: logger)
        }
    }

    /// The next complete upload whose storing is due, leased for `lease` (a crashed server's is taken again then).
    public func claimDue(lease: Duration) async throws -> BrowserUpload? {
        try await CatalogError.wrapping("claim a browser upload to store") {
            let seconds = Double(lease.components.seconds)
            let rows = try await client.catalogQuery("""
                WITH due AS (
                    SELECT id FROM browser_uploads WHERE state = 'storing' AND run_after <= now()
                    ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED),
                claimed AS (
                    UPDATE browser_uploads u SET run_after = now() + make_interval(secs => \(seconds)), attempts = u.attempts + 1
                    FROM due WHERE u.id = due.id RETURNING u.*)
                SELECT \(unescaped: Self.columns) FROM claimed u JOIN sources s ON s.id = u.source_id
                """, logger: logger)
            return try await decode(rows).first
        }
    }

    /// Storing failed: kept `storing` and tried again after `delay`, the error shown to its owner.
    public func retryLater(id: String, error: String, delay: Duration) async throws {
        try await CatalogError.wrapping("reschedule a browser upload") {
            let seconds = Double(delay.components.seconds)
            _ = try await client.catalogQuery("""
                UPDATE browser_uploads SET error = \(error), run_after = now() + make_interval(secs => \(seconds)), updated_at = now()
                WHERE id = \(id) AND state = 'storing'
                """, logger: logger)
        }
    }

    /// The upload is in the catalog: `fileID` is the path's newest row. When it was the source's last open upload,
    /// the browser run ends in the same transaction. Returns whether the run ended.
    @discardableResult
    public func stored(id: String, sourceID: Int64, fileID: Int64?, outcome: String) async throws -> Bool {
        try await CatalogError.wrapping("record a stored browser upload") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
                _ = try await connection.query("""
                    UPDATE browser_uploads SET state = 'stored', file_id = \(fileID), outcome = \(outcome), error = NULL, updated_at = now()
                    WHERE id = \(id) AND state = 'storing'
                    """, logger: logger)
                return try await finishRunIfIdle(sourceID: sourceID, on: connection)
            }
        }
    }

    /// Terminates the owner's upload (tus `DELETE`): the row goes; an upload being stored cannot be terminated
    /// (`.busy`). When it was the source's last open upload, the browser run ends in the same transaction.
    public func terminate(id: String, ownerID: Int64) async throws -> BrowserUploadTermination {
        try await CatalogError.wrapping("terminate a browser upload") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                guard let upload = try await fetch(id: id, ownerID: ownerID, on: connection) else { return .notFound }
                _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(upload.sourceID) FOR UPDATE", logger: logger)
                guard let current = try await fetch(id: id, ownerID: ownerID, on: connection) else { return .notFound }
                if current.state == .storing { return .busy }
                _ = try await connection.query("DELETE FROM browser_uploads WHERE id = \(id)", logger: logger)
                if current.state == .receiving { _ = try await finishRunIfIdle(sourceID: current.sourceID, on: connection) }
                return .terminated
            }
        }
    }

    /// Uploads still receiving that got no byte for `idle` (tus `expiration`): each row goes, in a transaction that
    /// ends the source's browser run when it was its last open upload, exactly as a terminated one. Returns their ids
    /// (the caller removes the partial files).
    public func expire(idle: Duration) async throws -> [String] {
        try await CatalogError.wrapping("expire idle browser uploads") {
            let seconds = Double(idle.components.seconds)
            var candidates: [(String, Int64)] = []
            for try await row in try await client.catalogQuery("""
                SELECT id, source_id FROM browser_uploads
                WHERE state = 'receiving' AND updated_at < now() - make_interval(secs => \(seconds)) ORDER BY updated_at LIMIT 100
                """, logger: logger).decode((String, Int64).self) { candidates.append(row) }
            var expired: [String] = []
            for (id, sourceID) in candidates {
                let gone = try await client.withCatalogTransaction(logger: logger) { connection -> Bool in
                    _ = try await connection.query("SELECT 1 FROM sources WHERE id = \(sourceID) FOR UPDATE", logger: logger)
                    var deleted = false
                    for try await _ in try await connection.query("""
                        DELETE FROM browser_uploads
                        WHERE id = \(id) AND state = 'receiving' AND updated_at < now() - make_interval(secs => \(seconds)) RETURNING 1
                        """, logger: logger).decode(Int.self) { deleted = true }
                    if deleted { _ = try await finishRunIfIdle(sourceID: sourceID, on: connection) }
                    return deleted
                }
                if gone { expired.append(id) }
            }
            return expired
        }
    }

    // MARK: Inside transactions

    private func openUploads(sourceID: Int64, on connection: CatalogConnection) async throws -> Int64 {
        for try await count in try await connection.query(
            "SELECT count(*) FROM browser_uploads WHERE source_id = \(sourceID) AND state <> 'stored'", logger: logger
        ).decode(Int64.self) {
            return count
        }
        return 0
    }

    /// Ends the source's browser run when it has no open upload left: the snapshot of every path it holds (a
    /// browser run only adds: nothing is gone), then the counts and `finished_at` (`IngestCatalog.finishSource`).
    /// The caller holds the source row's lock.
    private func finishRunIfIdle(sourceID: Int64, on connection: CatalogConnection) async throws -> Bool {
        guard try await openUploads(sourceID: sourceID, on: connection) == 0 else { return false }
        let snapshots = SnapshotCatalog(client: client, logger: logger)
        var open: (Int64, Date)?
        for try await row in try await connection.query("""
            SELECT id, started_at FROM snapshots WHERE source_id = \(sourceID) AND finished_at IS NULL ORDER BY number DESC LIMIT 1
            """, logger: logger).decode((Int64, Date).self) {
            open = row
        }
        let snapshotID: Int64
        let started: Date
        if let open {
            (snapshotID, started) = open
        } else {
            snapshotID = try await snapshots.begin(sourceID: sourceID, on: connection).id
            started = Date(timeIntervalSince1970: 0)
        }
        var paths: [String] = []
        var bytes: Int64 = 0
        for try await (path, size) in try await connection.query("""
            SELECT DISTINCT ON (path) path, size_bytes FROM objectstoragefiles
            WHERE source_id = \(sourceID) AND deleted_at IS NULL ORDER BY path, version DESC
            """, logger: logger).decode((String, Int64).self) {
            paths.append(path)
            bytes += size
        }
        var uploaded: Int64 = 0
        for try await sum in try await connection.query("""
            SELECT coalesce(sum(length), 0)::bigint FROM browser_uploads
            WHERE source_id = \(sourceID) AND state = 'stored' AND outcome = 'staged' AND updated_at >= \(started)
            """, logger: logger).decode(Int64.self) {
            uploaded = sum
        }
        try await snapshots.finish(snapshotID: snapshotID, sourceID: sourceID, seenPaths: paths, unreadPaths: [], bytesUploaded: uploaded, on: connection)
        _ = try await connection.query(
            IngestCatalog.finishSourceQuery(sourceID, counts: SourceCounts(filesSeen: Int64(paths.count), bytesSeen: bytes, filesSkipped: 0)),
            logger: logger)
        return true
    }

    private func fetch(id: String, ownerID: Int64?, on connection: CatalogConnection) async throws -> BrowserUpload? {
        let rows = try await connection.query("""
            SELECT \(unescaped: Self.columns) FROM browser_uploads u JOIN sources s ON s.id = u.source_id
            WHERE u.id = \(id) AND (\(ownerID)::bigint IS NULL OR u.owner_id = \(ownerID))
            """, logger: logger)
        return try await decode(rows).first
    }

    private func decode<Rows: AsyncSequence & Sendable>(_ rows: Rows) async throws -> [BrowserUpload] where Rows.Element == PostgresRow {
        var uploads: [BrowserUpload] = []
        for try await (id, owner, source, label, path, length, received, metadata, modified, state, attempts, error, fileID, outcome, updated)
            in rows.decode((String, Int64, Int64, String, String, Int64, Int64, String, Date, String, Int32, String?, Int64?, String?, Date).self)
        {
            uploads.append(BrowserUpload(
                id: id, ownerID: owner, sourceID: source, sourceLabel: label, path: path, length: length, received: received, metadata: metadata,
                modifiedAt: modified, state: BrowserUploadState(rawValue: state) ?? .receiving, attempts: Int(attempts), error: error,
                fileID: fileID, outcome: outcome, updatedAt: updated))
        }
        return uploads
    }
}

/// What terminating an upload did.
public enum BrowserUploadTermination: Sendable, Hashable {
    case terminated
    /// No such upload of this owner.
    case notFound
    /// Every byte is here and the server is storing it: it is no longer the client's to cancel.
    case busy
}
