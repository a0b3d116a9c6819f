import Foundation
import PipelineCore
import PostgresNIO

/// A bundle's way out when it never became `archived`: given up by its own worker after a failure, or by the
/// sweep when its worker died. Either way the bundle row turns `deleted` and its objects are queued in
/// `pending_object_deletes` in one transaction, under the bundle's row lock, which `recordArchived` takes too:
/// so a file is never recorded into a bundle whose objects are on their way out, and no object is left behind
/// when a removal fails (the queue is retried by every sweep).
extension ArchiveCatalog {
    /// Locks a bundle about to be recorded; throws `fenced` when it is no longer `uploading` (the sweep gave it up).
    func lockUploadingBundle(_ id: Int64, on connection: CatalogConnection) async throws {
        let rows = try await connection.query("SELECT state FROM bundles WHERE id = \(id) FOR UPDATE", logger: logger)
        var state: String?
        for try await value in rows.decode(String.self) { state = value }
        guard state == "uploading" else {
            throw CatalogError(.fenced, "catalog: bundle \(id) is \(state ?? "gone"), not uploading: the sweep gave it up while it was being stored (its worker's heartbeat was stale); its files go back to the queue")
        }
    }

    /// Bundles left `uploading` by a worker that stopped or whose heartbeat is older than `staleAfter`, given up:
    /// each becomes `deleted` and its objects are queued for removal.
    public func giveUpOrphanBundles(staleAfter: Duration) async throws -> [OrphanBundle] {
        try await CatalogError.wrapping("give up orphan bundles") {
            try await giveUp("""
                b.state = 'uploading' AND NOT EXISTS (
                    SELECT 1 FROM workers w WHERE w.id = b.owner AND w.stopped_at IS NULL
                      AND w.heartbeat_at > now() - make_interval(secs => \(staleAfter.seconds)))
                """, reason: "orphan bundle")
        }
    }

    /// This worker's own bundle could not be recorded (a failed upload or transaction): given up at once rather
    /// than left for the sweep. Returns the object keys queued for removal; empty when the bundle was recorded
    /// after all (a commit whose answer was lost) or is not this worker's.
    public func abandonBundle(_ id: Int64, workerID: UUID) async throws -> [String] {
        try await CatalogError.wrapping("give up the bundle") {
            try await giveUp("b.id = \(id) AND b.state = 'uploading' AND b.owner = \(workerID)", reason: "bundle not recorded")
                .flatMap { [$0.archiveKey] + ($0.manifestKey.map { [$0] } ?? []) }
        }
    }

    private func giveUp(_ condition: PostgresQuery, reason: String) async throws -> [OrphanBundle] {
        var sql = """
            WITH given_up AS (
                UPDATE bundles AS b SET state = 'deleted', owner = NULL
                WHERE \(condition.sql) AND NOT EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.bundle_id = b.id)
                RETURNING b.id, b.archive_key, b.manifest_key
            ), queued AS (
                INSERT INTO pending_object_deletes (area, storage_key, reason)
                SELECT 'archive', k.key, $\(condition.binds.count + 1) FROM given_up, unnest(ARRAY[archive_key, manifest_key]) AS k(key)
                WHERE k.key IS NOT NULL
                ON CONFLICT DO NOTHING
            )
            SELECT id, archive_key, manifest_key FROM given_up
            """
        var binds = condition.binds
        binds.append(reason)
        sql = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        var result: [OrphanBundle] = []
        let rows = try await client.catalogQuery(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        for try await (id, key, manifest) in rows.decode((Int64, String, String?).self) {
            result.append(OrphanBundle(id: id, archiveKey: key, manifestKey: manifest))
        }
        return result
    }
}
