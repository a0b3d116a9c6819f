import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A spooled row a sender holds: its lease is valid while `leaseToken` is the row's token and the lease has not
/// expired; every change the sender makes to it is guarded by both (as the work queue's are).
public struct SpooledFile: Sendable, Hashable {
    public let fileID: Int64
    public let leaseToken: Int64
    public let sourceID: Int64
    public let path: String
    /// The file's key in the spool directory, and the key it gets in staging.
    public let key: String
    /// The bytes that must arrive in staging: the stored copy's (ciphertext of an encrypted source) or the original's.
    public let expectedSize: Int64
    public let expectedSHA256: String
    /// The multipart journal a killed sender left (JSON), so that its successor sends only the missing parts.
    public let sendState: String?
    /// A disc image's map of unreadable sectors (`details.rescue_map_key`), spooled beside it and sent with it.
    public let rescueMapKey: String?
}

/// What the sender of a spool last said, for `uploader sources` and the status page.
public struct SpoolSenderStatus: Sendable, Hashable, Codable {
    public let spoolID: UUID
    public let host: String
    public let path: String
    public let state: String?
    public let detail: String?
    public let updatedAt: Date?
    /// Files still waiting in this spool, and their bytes.
    public let files: Int64
    public let bytes: Int64

    public init(spoolID: UUID, host: String, path: String, state: String?, detail: String?, updatedAt: Date?, files: Int64, bytes: Int64) {
        (self.spoolID, self.host, self.path, self.state, self.detail, self.updatedAt, self.files, self.bytes) = (spoolID, host, path, state, detail, updatedAt, files, bytes)
    }

    /// "sender paused (until 01:00: outside every transfer window)", or that none has run.
    public var said: String {
        guard let state else { return "no sender has run" }
        return "sender \(state)" + (detail.map { " (\($0))" } ?? "")
    }

    enum CodingKeys: String, CodingKey {
        case spoolID = "spool_id"
        case host, path, state = "sender_state", detail = "sender_detail", updatedAt = "sender_updated_at"
        case files = "files_waiting", bytes = "bytes_waiting"
    }
}

/// The queries of the spool and its senders (`uploader upload --spool`, `uploader send`). Claims are one statement
/// with `FOR UPDATE SKIP LOCKED` and a lease, so two senders on one spool (two processes, or two machines on one
/// NAS directory) never send the same file at once; the move to `staged` is one statement guarded by the lease.
public struct SpoolCatalog: Sendable {
    /// `ObjectStorageFiles.storage` of a spooled row.
    public static let storageArea = "spool"

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records (or refreshes) a spool directory seen on this host.
    public func register(spoolID: UUID, host: String, path: String) async throws {
        try await CatalogError.wrapping("register the spool") {
            _ = try await client.catalogQuery("""
                INSERT INTO spools (id, host, path) VALUES (\(spoolID), \(host), \(path))
                ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, path = EXCLUDED.path
                """, logger: logger)
        }
    }

    /// Claims up to `limit` spooled rows of this spool: unleased ones and ones whose sender's lease ran out (it was
    /// killed). `excluding` keeps out rows this sender already gave up on in this run.
    public func claim(spoolID: UUID, owner: UUID, limit: Int, lease: Duration, excluding: [Int64] = []) async throws -> [SpooledFile] {
        try await CatalogError.wrapping("claim spooled files") {
            let rows = try await client.catalogQuery("""
                WITH candidates AS (
                    SELECT id FROM objectstoragefiles
                    WHERE state = 'spooled' AND spool_id = \(spoolID) AND deleted_at IS NULL
                        AND (lease_owner IS NULL OR lease_expires_at < now()) AND NOT (id = ANY(\(excluding)::bigint[]))
                    ORDER BY id
                    FOR UPDATE SKIP LOCKED
                    LIMIT \(limit)
                )
                UPDATE objectstoragefiles AS f SET lease_owner = \(owner), lease_token = f.lease_token + 1,
                    lease_expires_at = now() + make_interval(secs => \(lease.seconds))
                FROM candidates c WHERE f.id = c.id
                RETURNING f.id, f.lease_token, f.source_id, f.path, f.storage_key, coalesce(f.stored_size_bytes, f.size_bytes),
                    coalesce(f.stored_hash, f.hash), f.send_state::text, f.details->>'rescue_map_key'
                """, logger: logger)
            var claimed: [SpooledFile] = []
            for try await (id, token, source, path, key, size, hash, state, map) in rows.decode(
                (Int64, Int64, Int64, String, String, Int64, String, String?, String?).self) {
                claimed.append(SpooledFile(
                    fileID: id, leaseToken: token, sourceID: source, path: path, key: key, expectedSize: size, expectedSHA256: hash, sendState: state,
                    rescueMapKey: map))
            }
            return claimed.sorted { $0.fileID < $1.fileID }
        }
    }

    /// Extends the leases of the rows still held and returns their ids; a row missing from the answer was lost.
    public func renew(_ files: [SpooledFile], owner: UUID, lease: Duration) async throws -> Set<Int64> {
        try await CatalogError.wrapping("renew the send leases") {
            guard !files.isEmpty else { return [] }
            let rows = try await client.catalogQuery("""
                UPDATE objectstoragefiles AS f SET lease_expires_at = now() + make_interval(secs => \(lease.seconds))
                FROM unnest(\(files.map(\.fileID))::bigint[], \(files.map(\.leaseToken))::bigint[]) AS held(id, token)
                WHERE f.id = held.id AND f.lease_token = held.token AND f.lease_owner = \(owner) AND f.state = 'spooled'
                    AND f.lease_expires_at > now()
                RETURNING f.id
                """, logger: logger)
            var held = Set<Int64>()
            for try await id in rows.decode(Int64.self) { held.insert(id) }
            return held
        }
    }

    /// Saves the multipart journal of a file being sent; false when the lease was lost (then the sender stops).
    public func saveSendState(_ file: SpooledFile, owner: UUID, json: String?) async throws -> Bool {
        try await CatalogError.wrapping("save the send journal") {
            let rows = try await client.catalogQuery("""
                UPDATE objectstoragefiles SET send_state = \(json)::jsonb
                WHERE id = \(file.fileID) AND state = 'spooled' AND lease_owner = \(owner) AND lease_token = \(file.leaseToken)
                RETURNING id
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// The bytes are in staging: the row becomes `staged` (claimable by the workers at once) in one statement
    /// guarded by the lease. False when the lease was lost: then the spool file must stay.
    ///
    /// A sent video also wakes the source's staged videos that wait (the other parts of a DVD title set or an AVCHD
    /// recording deferred while this one was still in the spool), as the end of an upload run does: they are
    /// looked at again now, not after their wait.
    public func markSent(_ file: SpooledFile, owner: UUID) async throws -> Bool {
        try await CatalogError.wrapping("record the sent file") {
            let rows = try await client.catalogQuery("""
                WITH sent AS (
                    UPDATE objectstoragefiles SET state = 'staged', storage = 'staging', spool_id = NULL, send_state = NULL,
                        lease_owner = NULL, lease_expires_at = NULL, run_after = now()
                    WHERE id = \(file.fileID) AND state = 'spooled' AND lease_owner = \(owner) AND lease_token = \(file.leaseToken)
                    RETURNING id, source_id, kind),
                woken AS (
                    UPDATE objectstoragefiles w SET run_after = now() FROM sent
                    WHERE sent.kind = 'video' AND w.source_id = sent.source_id AND w.kind = 'video' AND w.state = 'staged'
                      AND w.run_after > now() AND w.lease_owner IS NULL
                    RETURNING 1)
                SELECT id FROM sent
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// The spool copy is missing or not what was read: the row becomes `failed` with the reason, so that the next
    /// upload of the source sends the content again into the same row (as for any failed row).
    public func failDamaged(_ file: SpooledFile, owner: UUID, error: String) async throws {
        try await CatalogError.wrapping("fail the damaged spooled file") {
            _ = try await client.catalogQuery("""
                UPDATE objectstoragefiles SET state = 'failed', error = \(error), send_state = NULL, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(file.fileID) AND state = 'spooled' AND lease_owner = \(owner) AND lease_token = \(file.leaseToken)
                """, logger: logger)
        }
    }

    /// Gives a row back (a failure, or a graceful stop): claimable again at once, its journal kept.
    public func release(_ file: SpooledFile, owner: UUID) async throws {
        try await CatalogError.wrapping("release the spooled file") {
            _ = try await client.catalogQuery("""
                UPDATE objectstoragefiles SET lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(file.fileID) AND state = 'spooled' AND lease_owner = \(owner) AND lease_token = \(file.leaseToken)
                """, logger: logger)
        }
    }

    /// Files and bytes (as they sit in the spool) still spooled in one spool.
    public func backlog(spoolID: UUID) async throws -> (files: Int64, bytes: Int64) {
        try await CatalogError.wrapping("count the spooled files") {
            let rows = try await client.catalogQuery("""
                SELECT count(*), coalesce(sum(coalesce(stored_size_bytes, size_bytes)), 0)::bigint FROM objectstoragefiles
                WHERE state = 'spooled' AND spool_id = \(spoolID) AND deleted_at IS NULL
                """, logger: logger)
            for try await (files, bytes) in rows.decode((Int64, Int64).self) { return (files, bytes) }
            return (0, 0)
        }
    }

    /// Whether a spool file is still needed: some live row is spooled at that key (or has its disc image's map
    /// there) in this spool. Used to sweep files a sender left behind after their row said `staged` (killed between
    /// the two).
    public func spooledKeys(spoolID: UUID, among keys: [String]) async throws -> Set<String> {
        try await keyQuery("look up spooled keys", keys, """
            SELECT f.storage_key FROM objectstoragefiles f
            WHERE f.spool_id = \(spoolID) AND f.state = 'spooled' AND f.storage_key = ANY(\(keys)::text[])
            UNION
            SELECT f.details->>'rescue_map_key' FROM objectstoragefiles f
            WHERE f.spool_id = \(spoolID) AND f.state = 'spooled' AND f.details->>'rescue_map_key' = ANY(\(keys)::text[])
            """)
    }

    /// Keys that were sent: a row left the spool for staging (or further) with this key (or this disc image map), or
    /// was archived from it. Pending uploads are not in it, so a file an uploader is still writing is never called sent.
    public func sentKeys(among keys: [String]) async throws -> Set<String> {
        try await keyQuery("look up sent keys", keys, """
            SELECT f.storage_key FROM objectstoragefiles f WHERE f.storage_key = ANY(\(keys)::text[]) AND f.state <> 'spooled'
            UNION
            SELECT f.details->>'rescue_map_key' FROM objectstoragefiles f
            WHERE f.details->>'rescue_map_key' = ANY(\(keys)::text[]) AND f.state <> 'spooled'
            UNION
            SELECT d.storage_key FROM pending_object_deletes d WHERE d.area = 'staging' AND d.storage_key = ANY(\(keys)::text[])
            """)
    }

    /// Keys some row of the catalog names, in any state and for any spool (its content, its disc image's map, a
    /// queued delete, an upload under way): what the orphan sweep must never remove. Deliberately wider than "this
    /// spool's rows": a sent row no longer carries its spool's id, and a key is a UUID, so nothing else can claim it.
    public func referencedKeys(among keys: [String]) async throws -> Set<String> {
        try await keyQuery("look up referenced keys", keys, """
            SELECT f.storage_key FROM objectstoragefiles f WHERE f.storage_key = ANY(\(keys)::text[])
            UNION
            SELECT f.details->>'rescue_map_key' FROM objectstoragefiles f WHERE f.details->>'rescue_map_key' = ANY(\(keys)::text[])
            UNION
            SELECT d.storage_key FROM pending_object_deletes d WHERE d.area = 'staging' AND d.storage_key = ANY(\(keys)::text[])
            UNION
            SELECT p.staging_key FROM pending_uploads p WHERE p.staging_key = ANY(\(keys)::text[])
            """)
    }

    /// Runs a query that answers with keys: each branch one index scan for the whole list (`storage_key`: migration 4's
    /// partial index; a disc image's map: migration 21's; a queued delete: its primary key, `area` first; a pending
    /// upload: its unique key).
    private func keyQuery(_ operation: String, _ keys: [String], _ query: PostgresQuery) async throws -> Set<String> {
        try await CatalogError.wrapping(operation) {
            guard !keys.isEmpty else { return [] }
            let rows = try await client.catalogQuery(query, logger: logger)
            var found = Set<String>()
            for try await key in rows.decode(String.self) { found.insert(key) }
            return found
        }
    }

    /// What the sender of a spool is doing: `sending`, `paused`, `offline`, `idle` (with a detail such as
    /// "412 KiB/s" or "until 01:00").
    public func recordSenderState(spoolID: UUID, state: String, detail: String?) async throws {
        try await CatalogError.wrapping("record the sender's state") {
            _ = try await client.catalogQuery("""
                UPDATE spools SET sender_state = \(state), sender_detail = \(detail), sender_updated_at = now() WHERE id = \(spoolID)
                """, logger: logger)
        }
    }

    /// For each source with files still in a spool: which spools, and how many of its files wait in each (from
    /// the partial index of spooled rows, so it costs nothing when nothing is spooled).
    public func waitingBySource() async throws -> [Int64: [UUID: Int64]] {
        try await CatalogError.wrapping("list what waits in the spools") {
            let rows = try await client.catalogQuery("""
                SELECT source_id, spool_id, count(*)::bigint FROM objectstoragefiles
                WHERE state = 'spooled' AND deleted_at IS NULL GROUP BY source_id, spool_id
                """, logger: logger)
            var result: [Int64: [UUID: Int64]] = [:]
            for try await (source, spool, files) in rows.decode((Int64, UUID, Int64).self) { result[source, default: [:]][spool] = files }
            return result
        }
    }

    /// Every spool with its sender's last word and what it still holds.
    public func senders() async throws -> [SpoolSenderStatus] {
        try await CatalogError.wrapping("list the spools") {
            let rows = try await client.catalogQuery("""
                SELECT s.id, s.host, s.path, s.sender_state, s.sender_detail, s.sender_updated_at,
                    count(f.id), coalesce(sum(coalesce(f.stored_size_bytes, f.size_bytes)), 0)::bigint
                FROM spools s LEFT JOIN objectstoragefiles f ON f.spool_id = s.id AND f.state = 'spooled' AND f.deleted_at IS NULL
                GROUP BY s.id ORDER BY s.registered_at
                """, logger: logger)
            var result: [SpoolSenderStatus] = []
            for try await (id, host, path, state, detail, updated, files, bytes) in rows.decode((UUID, String, String, String?, String?, Date?, Int64, Int64).self) {
                result.append(SpoolSenderStatus(spoolID: id, host: host, path: path, state: state, detail: detail, updatedAt: updated, files: files, bytes: bytes))
            }
            return result
        }
    }
}
