import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A claimed row with what the archiver needs to know about it.
public struct ArchiveItem: Sendable {
    public let job: ClaimedFile
    public let sourceID: Int64
    public let sourceLabel: String
    public let name: String
    public let path: String
    public let version: Int
    public let kind: FileKind
    public let modifiedAt: Date?
    /// SHA-256 and size of the original bytes (what dedupe compares).
    public let originalHash: String
    public let originalSize: Int64
    /// Where the bytes to archive are in staging, their size and SHA-256: the original, or for a transcoded
    /// video the transcoder's output.
    public let stagingKey: String?
    public let contentSize: Int64
    public let contentHash: String
    public let degraded: Bool
    /// A disc image's map of unreadable sectors, stored beside it in staging.
    public let rescueMapKey: String?
    /// An encrypted file's placement, sealed by the uploader (`details.sealed`): the archive carries it instead
    /// of the label, path and time, which stay out of the bucket.
    public let sealed: String?
    /// The source's encryption record (JSON) for an encrypted file: bundle manifests carry it, so that a rebuild
    /// from the archive alone can open the file with the identity.
    public let sourceEncryption: String?
    /// The source's tier: which storage class, and which bundles, the file goes into.
    public let tier: SourceTier

    public var isTranscoded: Bool { job.claimedFrom == .transcoded }
}

/// For one SHA-256: a row that already holds it in the archive, and the lowest-id row outside the batch that
/// is still on its way there; for a file of a warm source only rows of warm sources count (`TierDedupe`).
public struct ContentHolders: Sendable, Hashable {
    public let archived: Int64?
    public let pending: Int64?

    public init(archived: Int64?, pending: Int64?) {
        self.archived = archived
        self.pending = pending
    }
}

/// Where a file's content ended up, for the transaction that marks it archived.
public struct ArchivedPlacement: Sendable {
    public let item: ArchiveItem
    public let archiveKey: String
    /// The offset of the member's data in the uncompressed tar, for files in a bundle.
    public let bundleOffset: Int64?
    public let storedSize: Int64
    public let storedHash: String
    /// A presigned GET while the stored class is readable without a restore.
    public let signedURL: PresignedURL?
    /// Other staging objects that go with the file (a disc image's rescue map), removed with it.
    public let extraStagingKeys: [String]

    public init(item: ArchiveItem, archiveKey: String, bundleOffset: Int64?, storedSize: Int64, storedHash: String, signedURL: PresignedURL? = nil, extraStagingKeys: [String] = []) {
        self.item = item
        self.archiveKey = archiveKey
        self.bundleOffset = bundleOffset
        self.storedSize = storedSize
        self.storedHash = storedHash
        self.signedURL = signedURL
        self.extraStagingKeys = extraStagingKeys
    }
}

/// A bundle's final facts, written in the same transaction as its members.
public struct BundleCompletion: Sendable {
    public let bundleID: Int64
    public let storedBytes: Int64
    public let hash: String
    public let storageClass: String

    public init(bundleID: Int64, storedBytes: Int64, hash: String, storageClass: String) {
        self.bundleID = bundleID
        self.storedBytes = storedBytes
        self.hash = hash
        self.storageClass = storageClass
    }
}

/// An object some transaction made unneeded, waiting to be removed.
public struct PendingObjectDelete: Sendable, Hashable {
    public let area: StorageArea
    public let key: String
    /// A row still reads this object from that area: removing it would lose data, so it is kept.
    public let stillReferenced: Bool
}

/// A bundle row left `uploading` by a worker that died.
public struct OrphanBundle: Sendable, Hashable {
    public let id: Int64
    public let archiveKey: String
    public let manifestKey: String?
}

/// The archiver's queries. Every change to a claimed row is guarded by the lease owner and fencing token.
public struct ArchiveCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func load(_ jobs: [ClaimedFile]) async throws -> [ArchiveItem] {
        try await CatalogError.wrapping("load the jobs to archive") {
            let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.fileID, $0) })
            let rows = try await client.catalogQuery("""
                SELECT f.id, f.source_id, s.label, f.name, f.path, f.version, f.kind, f.modified_at, f.hash, f.size_bytes,
                       f.storage_key, coalesce(f.stored_size_bytes, f.size_bytes), coalesce(f.stored_hash, f.hash), f.degraded,
                       f.details->>'rescue_map_key', f.details->>'sealed', s.encryption::text, s.tier
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.id = ANY(\(Array(byID.keys)))
                """, logger: logger)
            var items: [ArchiveItem] = []
            for try await row in rows.decode((Int64, Int64, String, String, String, Int, String, Date?, String, Int64, String?, Int64, String, Bool, String?, String?, String?, String).self) {
                guard let job = byID[row.0] else { continue }
                items.append(ArchiveItem(
                    job: job, sourceID: row.1, sourceLabel: row.2, name: row.3, path: row.4, version: row.5,
                    kind: FileKind(rawValue: row.6) ?? .regular, modifiedAt: row.7, originalHash: row.8, originalSize: row.9,
                    stagingKey: row.10, contentSize: row.11, contentHash: row.12, degraded: row.13, rescueMapKey: row.14, sealed: row.15, sourceEncryption: row.16,
                    tier: SourceTier(rawValue: row.17) ?? .cold))
            }
            return items.sorted { $0.job.fileID < $1.job.fileID }
        }
    }

    /// Who else has each hash, per tier of the file asking: an archived holder, or a lower-id row outside `batch`
    /// still on its way. A warm file counts only rows of warm sources (`TierDedupe`); a cold one counts every row.
    public func holders(of hashes: [String], excluding batch: [Int64]) async throws -> [SourceTier: [String: ContentHolders]] {
        try await CatalogError.wrapping("look up who holds the content") {
            guard !hashes.isEmpty else { return [:] }
            let rows = try await client.catalogQuery("""
                SELECT f.hash,
                       min(f.id) FILTER (WHERE f.state = 'archived'),
                       min(f.id) FILTER (WHERE f.state IN ('staged', 'transcoding', 'transcoded', 'archiving') AND NOT (f.id = ANY(\(batch)))),
                       min(f.id) FILTER (WHERE f.state = 'archived' AND s.tier = 'warm'),
                       min(f.id) FILTER (WHERE f.state IN ('staged', 'transcoding', 'transcoded', 'archiving') AND NOT (f.id = ANY(\(batch))) AND s.tier = 'warm')
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.hash = ANY(\(hashes)) AND f.deleted_at IS NULL
                GROUP BY f.hash
                """, logger: logger)
            var result: [SourceTier: [String: ContentHolders]] = [:]
            for try await (hash, archived, pending, warmArchived, warmPending) in rows.decode((String, Int64?, Int64?, Int64?, Int64?).self) {
                result[.cold, default: [:]][hash] = ContentHolders(archived: archived, pending: pending)
                result[.warm, default: [:]][hash] = ContentHolders(archived: warmArchived, pending: warmPending)
            }
            return result
        }
    }

    /// What `recordDuplicates` did with each row.
    public struct DuplicateOutcome: Sendable, Hashable {
        /// Now `duplicate` of its holder.
        public var recorded: Set<Int64> = []
        /// Left as it was: the holder is no longer a live archived row (deleted meanwhile), so it must be archived
        /// itself or matched again.
        public var holderGone: Set<Int64> = []
    }

    /// Marks rows `duplicate` of the rows holding their content and queues their staging copies for removal. Rows
    /// whose lease was lost are in neither set of the result. Under the content locks (`ContentLocks`), the holder
    /// is checked again inside the transaction: it must still be archived and not deleted.
    public func recordDuplicates(_ duplicates: [(item: ArchiveItem, holder: Int64)], workerID: UUID) async throws -> DuplicateOutcome {
        try await CatalogError.wrapping("record the duplicates") {
            guard !duplicates.isEmpty else { return DuplicateOutcome() }
            return try await client.withCatalogTransaction(logger: logger) { connection in
                try await ContentLocks.lock(
                    hashes: Array(Set(duplicates.map(\.item.originalHash))), paths: duplicates.map { ($0.item.path, $0.item.sourceID) },
                    on: connection, logger: logger)
                let held = try await lockHeld(duplicates.map(\.item.job.fileID), workerID: workerID, on: connection)
                let fenced = duplicates.filter { held[$0.item.job.fileID]?.token == $0.item.job.leaseToken }
                guard !fenced.isEmpty else { return DuplicateOutcome() }
                let oldKeys = held.compactMapValues(\.stagingKey)
                let rows = try await connection.query("""
                    UPDATE objectstoragefiles AS f SET
                        state = 'duplicate', duplicate_of = d.holder, storage = NULL, storage_key = NULL,
                        lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL, error = NULL,
                        signed_download_url = NULL, signed_download_url_expires_at = NULL
                    FROM unnest(\(fenced.map(\.item.job.fileID))::bigint[], \(fenced.map(\.holder))::bigint[]) AS d(id, holder)
                    JOIN objectstoragefiles AS h ON h.id = d.holder AND h.state = 'archived' AND h.deleted_at IS NULL
                    WHERE f.id = d.id
                    RETURNING f.id
                    """, logger: logger)
                var outcome = DuplicateOutcome()
                var keys: [(Int64, String)] = []
                for try await id in rows.decode(Int64.self) {
                    outcome.recorded.insert(id)
                    if let key = oldKeys[id] { keys.append((id, key)) }
                }
                outcome.holderGone = Set(fenced.map(\.item.job.fileID)).subtracting(outcome.recorded)
                try await queueDeletes(area: .staging, keys: keys, reason: "duplicate of archived content", on: connection)
                return outcome
            }
        }
    }

    /// A bundle about to be uploaded: recorded first, so that a worker dying mid-upload leaves a findable orphan.
    public func createBundle(archiveKey: String, manifestKey: String, compression: String, memberCount: Int, rawBytes: Int64, owner: UUID) async throws -> Int64 {
        try await CatalogError.wrapping("record the new bundle") {
            let rows = try await client.catalogQuery("""
                INSERT INTO bundles (archive_key, manifest_key, state, compression, member_count, raw_bytes, owner)
                VALUES (\(archiveKey), \(manifestKey), 'uploading', \(compression), \(memberCount), \(rawBytes), \(owner))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw CatalogError(.migrationFailed, "the bundle row for \(archiveKey) was not returned")
        }
    }

    /// One transaction: the rows become `archived` with where their content is, their staging copies are queued
    /// for removal, and the bundle (if any) becomes `archived`. Returns the ids that were still held; content of
    /// rows whose lease was lost is counted as dead in the bundle.
    public func recordArchived(
        _ placements: [ArchivedPlacement], bundle: BundleCompletion?, workerID: UUID
    ) async throws -> Set<Int64> {
        try await CatalogError.wrapping("record the archived files") {
            guard !placements.isEmpty else { return [] }
            return try await client.withCatalogTransaction(logger: logger) { connection in
                // The bundle first (then the rows, in id order): the orphan sweep gives up a bundle under the same
                // lock, so no file is ever recorded into a bundle whose objects are queued for removal.
                if let bundle { try await lockUploadingBundle(bundle.bundleID, on: connection) }
                let held = try await lockHeld(placements.map(\.item.job.fileID), workerID: workerID, on: connection)
                let fenced = placements.filter { held[$0.item.job.fileID]?.token == $0.item.job.leaseToken }
                let oldKeys = held.compactMapValues(\.stagingKey)
                // Arrays of optionals do not bind; -1 and "" stand for NULL.
                let offsets: [Int64] = fenced.map { $0.bundleOffset ?? -1 }
                let urls: [String] = fenced.map { $0.signedURL?.url ?? "" }
                // -infinity: no expiry (a file:// URL).
                let expiries: [Date] = fenced.map { $0.signedURL.map { $0.expires ?? .distantPast } ?? .distantPast }
                let rows = try await connection.query("""
                    UPDATE objectstoragefiles AS f SET
                        state = 'archived', storage = 'archive', storage_key = p.key, archive_key = p.key,
                        bundle_id = \(bundle?.bundleID), bundle_offset = nullif(p.member_offset, -1), stored_size_bytes = p.size, stored_hash = p.hash,
                        signed_download_url = nullif(p.url, ''),
                        signed_download_url_expires_at = CASE WHEN p.url = '' OR p.expires = \(Date.distantPast) THEN NULL ELSE p.expires END,
                        archived_at = now(), error = NULL,
                        lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL
                    FROM unnest(\(fenced.map(\.item.job.fileID))::bigint[], \(fenced.map(\.archiveKey))::text[],
                                \(offsets)::bigint[], \(fenced.map(\.storedSize))::bigint[], \(fenced.map(\.storedHash))::text[],
                                \(urls)::text[], \(expiries)::timestamptz[])
                             AS p(id, key, member_offset, size, hash, url, expires)
                    WHERE f.id = p.id
                    RETURNING f.id
                    """, logger: logger)
                var changed = Set<Int64>()
                var keys: [(Int64, String)] = []
                for try await id in rows.decode(Int64.self) {
                    changed.insert(id)
                    if let key = oldKeys[id] { keys.append((id, key)) }
                }
                for placement in placements where changed.contains(placement.item.job.fileID) {
                    keys += placement.extraStagingKeys.map { (placement.item.job.fileID, $0) }
                }
                try await queueDeletes(area: .staging, keys: keys, reason: "archived", on: connection)
                if let bundle {
                    let lost = placements.filter { !changed.contains($0.item.job.fileID) }
                    _ = try await connection.query("""
                        UPDATE bundles SET state = 'archived', stored_bytes = \(bundle.storedBytes), hash = \(bundle.hash),
                            storage_class = \(bundle.storageClass), archived_at = now(), owner = NULL,
                            dead_members = \(lost.count), dead_bytes = \(lost.reduce(Int64(0)) { $0 + $1.storedSize })
                        WHERE id = \(bundle.bundleID)
                        """, logger: logger)
                }
                return changed
            }
        }
    }

    /// A row this worker still holds, locked until the transaction ends.
    struct HeldRow {
        let token: Int64
        /// The staging key before the update changes it.
        let stagingKey: String?
    }

    /// Locks the rows this worker still holds, in id order (every statement that locks several of them waits in the
    /// same order, so two of them cannot deadlock). The caller keeps those whose fencing token is still its own and
    /// then updates them by id alone: the lock keeps owner and token as they are until the commit, and a join
    /// on nothing but the primary key keeps the planner from a nested loop over the ids when statistics say no
    /// row is leased (seen: 8 s instead of 0.35 s for 5,000 rows after a bulk load).
    func lockHeld(_ ids: [Int64], workerID: UUID, on connection: CatalogConnection) async throws -> [Int64: HeldRow] {
        var held: [Int64: HeldRow] = [:]
        let rows = try await connection.query("""
            SELECT id, lease_token, storage_key FROM objectstoragefiles WHERE id = ANY(\(ids)) AND lease_owner = \(workerID) ORDER BY id FOR UPDATE
            """, logger: logger)
        for try await (id, token, key) in rows.decode((Int64, Int64, String?).self) {
            held[id] = HeldRow(token: token, stagingKey: key)
        }
        return held
    }

    func queueDeletes(area: StorageArea, keys: [(Int64, String)], reason: String, on connection: CatalogConnection) async throws {
        guard !keys.isEmpty else { return }
        _ = try await connection.query("""
            INSERT INTO pending_object_deletes (area, storage_key, file_id, reason)
            SELECT \(area.rawValue), k.key, k.id, \(reason) FROM unnest(\(keys.map(\.1))::text[], \(keys.map(\.0))::bigint[]) AS k(key, id)
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Objects waiting to be removed, oldest first. `olderThan` leaves fresh entries to the worker that made them.
    public func pendingDeletes(olderThan age: Duration, limit: Int) async throws -> [PendingObjectDelete] {
        try await CatalogError.wrapping("list the pending object deletes") {
            let rows = try await client.catalogQuery("""
                SELECT d.area, d.storage_key, EXISTS (
                    SELECT 1 FROM objectstoragefiles f
                    WHERE f.storage_key = d.storage_key AND f.storage = d.area AND f.deleted_at IS NULL
                      AND f.state IN ('staged', 'transcoding', 'transcoded', 'archiving', 'archived'))
                FROM pending_object_deletes d
                WHERE d.requested_at < now() - make_interval(secs => \(age.seconds))
                ORDER BY d.requested_at LIMIT \(limit)
                """, logger: logger)
            var result: [PendingObjectDelete] = []
            for try await (area, key, referenced) in rows.decode((String, String, Bool).self) {
                result.append(PendingObjectDelete(area: StorageArea(rawValue: area) ?? .staging, key: key, stillReferenced: referenced))
            }
            return result
        }
    }

    /// The object is gone (or must be kept): the to-do item is done.
    public func finishDeletes(area: StorageArea, keys: [String]) async throws {
        try await CatalogError.wrapping("finish the object deletes") {
            guard !keys.isEmpty else { return }
            _ = try await client.catalogQuery("DELETE FROM pending_object_deletes WHERE area = \(area.rawValue) AND storage_key = ANY(\(keys))", logger: logger)
        }
    }
}

/// A bundle marked for rewriting, and the live files in it.
public struct BundleToRewrite: Sendable, Hashable {
    public let id: Int64
    public let archiveKey: String
    public let manifestKey: String?
    public let compression: String
    public let hash: String?
    public let restoreRequested: Bool
}

public struct LiveBundleMember: Sendable, Hashable {
    public let fileID: Int64
    public let offset: Int64
    public let size: Int64
    public let sha256: String
}

extension ArchiveCatalog {
    public func bundlesToRewrite(limit: Int) async throws -> [BundleToRewrite] {
        try await CatalogError.wrapping("list the bundles to rewrite") {
            let rows = try await client.catalogQuery("""
                SELECT id, archive_key, manifest_key, compression, hash, details ? 'restore_requested_at'
                FROM bundles WHERE state = 'rewriting' ORDER BY id LIMIT \(limit)
                """, logger: logger)
            var result: [BundleToRewrite] = []
            for try await (id, key, manifest, compression, hash, requested) in rows.decode((Int64, String, String?, String, String?, Bool).self) {
                result.append(BundleToRewrite(id: id, archiveKey: key, manifestKey: manifest, compression: compression, hash: hash, restoreRequested: requested))
            }
            return result
        }
    }

    public func noteRestoreRequested(bundleID: Int64) async throws {
        try await CatalogError.wrapping("note the bundle's restore request") {
            _ = try await client.catalogQuery("""
                UPDATE bundles SET details = details || jsonb_build_object('restore_requested_at', now()) WHERE id = \(bundleID)
                """, logger: logger)
        }
    }

    public func liveMembers(bundleID: Int64) async throws -> [LiveBundleMember] {
        try await CatalogError.wrapping("list the bundle's live members") {
            let rows = try await client.catalogQuery("""
                SELECT id, bundle_offset, stored_size_bytes, stored_hash FROM objectstoragefiles
                WHERE bundle_id = \(bundleID) AND state = 'archived' AND deleted_at IS NULL ORDER BY bundle_offset
                """, logger: logger)
            var result: [LiveBundleMember] = []
            for try await (id, offset, size, hash) in rows.decode((Int64, Int64, Int64, String).self) {
                result.append(LiveBundleMember(fileID: id, offset: offset, size: size, sha256: hash))
            }
            return result
        }
    }

    /// One transaction: the live members, copied back to staging at `stagingKeys`, go back into the archiver's
    /// queue (`staged`, or `transcoded` for videos, so nothing is transcoded twice), remembering the bundle they
    /// came from, and the old bundle becomes `replaced`: it is kept, untouched, until every one of them is archived
    /// again (`retireUnusedBundles`). Returns how many rows were re-staged.
    public func restage(bundleID: Int64, stagingKeys: [Int64: String]) async throws -> Int {
        try await CatalogError.wrapping("re-stage the bundle's members") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var count = 0
                for try await _ in try await connection.query("""
                    UPDATE objectstoragefiles AS f SET
                        state = CASE WHEN f.kind = 'video' THEN 'transcoded' ELSE 'staged' END,
                        storage = 'staging', storage_key = k.key, archive_key = NULL, bundle_id = NULL, bundle_offset = NULL,
                        archived_at = NULL, signed_download_url = NULL, signed_download_url_expires_at = NULL,
                        attempts = 0, run_after = now(), rewritten_from_bundle = \(bundleID),
                        details = f.details || jsonb_build_object('rewritten_from_bundle', \(bundleID))
                    FROM unnest(\(Array(stagingKeys.keys))::bigint[], \(Array(stagingKeys.values))::text[]) AS k(id, key)
                    WHERE f.id = k.id AND f.bundle_id = \(bundleID) AND f.state = 'archived' AND f.deleted_at IS NULL
                    RETURNING f.id
                    """, logger: logger).decode(Int64.self) {
                    count += 1
                }
                var live = 0
                for try await value in try await connection.query("""
                    SELECT count(*) FROM objectstoragefiles WHERE bundle_id = \(bundleID) AND deleted_at IS NULL
                    """, logger: logger).decode(Int.self) {
                    live = value
                }
                guard live == 0 else { throw CatalogError(.migrationFailed, "bundle \(bundleID) still has \(live) live members after re-staging") }
                _ = try await connection.query("UPDATE bundles SET state = 'replaced' WHERE id = \(bundleID)", logger: logger)
                return count
            }
        }
    }

    /// Bundles no live file needs become `deleted` and their objects are queued for removal: a replaced bundle
    /// once its former members are all archived again (or deleted) — one whose member is not (still queued, or
    /// failed) is kept, so its bytes exist somewhere until the new copy does — and an archived bundle none of whose
    /// members is live any more (its members' leases were all lost before it was recorded, or every member was
    /// deleted by a path that did not count it dead). Returns the bundles retired.
    ///
    /// `archivedToo: false` looks at replaced bundles only, through their partial index. Archived bundles are
    /// almost all bundles, so checking them reads every bundle (with a member probe each): the sweep does that only
    /// when it carried out deletes, and at an archiver's start and hourly, for the other ways members go.
    public func retireUnusedBundles(archivedToo: Bool = true) async throws -> [Int64] {
        try await CatalogError.wrapping("retire unused bundles") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var retired: [Int64] = []
                var keys: [String] = []
                for try await (id, key, manifest) in try await connection.query(
                    PostgresQuery(unsafeSQL: Self.retirementSQL(archivedToo: archivedToo)), logger: logger
                ).decode((Int64, String, String?).self) {
                    retired.append(id)
                    keys.append(key)
                    if let manifest { keys.append(manifest) }
                }
                _ = try await connection.query("""
                    INSERT INTO pending_object_deletes (area, storage_key, reason)
                    SELECT 'archive', key, 'bundle rewritten' FROM unnest(\(keys)::text[]) AS key
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                return retired
            }
        }
    }

    /// The retirement's statement, without binds (tests read its plan). The state is a literal: the planner proves a
    /// partial index's predicate only from constants.
    static func retirementSQL(archivedToo: Bool) -> String {
        """
        UPDATE bundles AS b SET state = 'deleted'
        WHERE \(archivedToo ? "b.state IN ('replaced', 'archived')" : "b.state = 'replaced'")
          AND NOT EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.bundle_id = b.id AND f.deleted_at IS NULL)
          AND NOT EXISTS (
              SELECT 1 FROM objectstoragefiles f LEFT JOIN objectstoragefiles h ON h.id = content_holder(f.id)
              WHERE f.rewritten_from_bundle = b.id AND f.deleted_at IS NULL
                AND (h.id IS NULL OR h.state <> 'archived' OR h.deleted_at IS NOT NULL OR h.bundle_id IS NOT DISTINCT FROM b.id))
        RETURNING b.id, b.archive_key, b.manifest_key
        """
    }
}
