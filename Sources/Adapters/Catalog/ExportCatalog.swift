import Foundation
import Logging
import PostgresNIO

/// What one catalog export writes: the whole catalog, or the rows changed since the last export in the bucket
/// (`CatalogSchema.exportChanges` explains how changed rows are found).
public struct CatalogExportPlan: Sendable, Hashable {
    /// Whole (a new base) or changes since `sinceXmin`.
    public let whole: Bool
    /// This export's number: every attempt gets its own, in order.
    public let number: Int64
    /// The catalog's identity (`catalog_identity`): a rebuilt catalog has another, so its exports never mix.
    public let catalogID: UUID
    /// For changes: the snapshot xmin of the export they continue from (xid8, as text), and the last whole one.
    public let sinceXmin: String?
    public let baseNumber: Int64?
}

/// When a whole export is written instead of changes.
public struct CatalogExportPolicy: Sendable, Hashable {
    /// Always whole (`archiver export-catalog`).
    public var whole: Bool
    /// Whole again once the rows written as changes since the last whole export reach this fraction of its rows,
    /// so that reading the export back stays proportional to the catalog, and its cost per changed row flat.
    public var compactFraction: Double
    /// Whole again after this many changes exports.
    public var maxChanges: Int

    public init(whole: Bool = false, compactFraction: Double = 0.25, maxChanges: Int = 64) {
        self.whole = whole
        self.compactFraction = compactFraction
        self.maxChanges = maxChanges
    }
}

/// The catalog as JSON lines, for the export the archiver writes to the archive bucket: one advisory lock so that
/// one export runs at a time, the rows streamed in order (sources, bundles, files, delete requests) from one
/// snapshot, and the bookkeeping of which export is in the bucket.
public struct ExportCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// What `withExportLock` hands its body.
    public struct Export: Sendable {
        public let plan: CatalogExportPlan
        let connection: CatalogConnection
        let logger: Logger

        /// Streams the plan's rows, each as one JSON text line, from one snapshot, after handing `onSnapshot` that
        /// snapshot's xmin (xid8 as text: the next changes export continues from it); returns the xmin too.
        public func streamRows(onSnapshot: (String) async throws -> Void, _ emit: (String) async throws -> Void) async throws -> String {
            try await ExportCatalog.streamRows(plan, on: connection, logger: logger, onSnapshot: onSnapshot, emit)
        }

        /// Records that this export is in the bucket, whole, with `rows` rows (after the object was written).
        public func recordDone(untilXmin: String, rows: Int) async throws {
            try await CatalogError.wrapping("record the catalog export") {
                _ = try await connection.query("""
                    UPDATE catalog_exports SET done_number = \(plan.number), done_xmin = \(untilXmin)::xid8,
                        base_number = CASE WHEN \(plan.whole) THEN \(plan.number) ELSE base_number END,
                        base_rows = CASE WHEN \(plan.whole) THEN \(Int64(rows)) ELSE base_rows END,
                        rows_since_base = CASE WHEN \(plan.whole) THEN 0 ELSE rows_since_base + \(Int64(rows)) END,
                        changes_since_base = CASE WHEN \(plan.whole) THEN 0 ELSE changes_since_base + 1 END
                    WHERE done_number IS NULL OR done_number < \(plan.number)
                    """, logger: logger)
            }
        }
    }

    /// Runs `body` holding the export lock, with the plan for this export (whole or changes, by `policy`).
    /// Returns nil without running `body` when another export holds the lock and `waitingForOthers` is false.
    public func withExportLock<Result: Sendable>(
        waitingForOthers: Bool, policy: CatalogExportPolicy = CatalogExportPolicy(), _ body: (Export) async throws -> Result
    ) async throws -> Result? {
        try await CatalogError.wrapping("export the catalog") {
            try await client.withCatalogConnection { connection in
                var locked = false
                try await CatalogError.wrapping("take the catalog-export lock") {
                    if waitingForOthers {
                        _ = try await connection.query("SELECT pg_advisory_lock(hashtextextended('catalog-export', 0))", logger: logger)
                        locked = true
                    } else {
                        for try await value in try await connection.query(
                            "SELECT pg_try_advisory_lock(hashtextextended('catalog-export', 0))", logger: logger
                        ).decode(Bool.self) {
                            locked = value
                        }
                    }
                }
                guard locked else { return nil }
                let unlock = {
                    try await CatalogError.wrapping("release the catalog-export lock") {
                        _ = try await connection.query("SELECT pg_advisory_unlock(hashtextextended('catalog-export', 0))", logger: logger)
                    }
                }
                do {
                    let plan = try await Self.plan(policy, on: connection, logger: logger)
                    let result = try await body(Export(plan: plan, connection: connection, logger: logger))
                    try await unlock()
                    return result
                } catch {
                    try? await unlock()
                    throw error
                }
            }
        }
    }

    /// Hands out the next number (committed at once: a crashed attempt never shares its number with the next) and
    /// chooses whole or changes.
    static func plan(_ policy: CatalogExportPolicy, on connection: CatalogConnection, logger: Logger) async throws -> CatalogExportPlan {
        try await CatalogError.wrapping("plan the catalog export") {
            let rows = try await connection.query("""
                UPDATE catalog_exports SET last_number = last_number + 1
                RETURNING last_number, base_number, base_rows, done_xmin::text, rows_since_base, changes_since_base,
                    (SELECT id FROM catalog_identity)
                """, logger: logger)
            for try await (number, base, baseRows, doneXmin, rowsSince, changesSince, catalogID) in rows.decode(
                (Int64, Int64?, Int64, String?, Int64, Int, UUID).self) {
                let compactAt = max(1, Int64((Double(baseRows) * policy.compactFraction).rounded(.up)))
                let whole = policy.whole || base == nil || doneXmin == nil || rowsSince >= compactAt || changesSince >= policy.maxChanges
                return CatalogExportPlan(
                    whole: whole, number: number, catalogID: catalogID, sinceXmin: whole ? nil : doneXmin, baseNumber: whole ? nil : base)
            }
            throw CatalogError(.migrationFailed, "catalog_exports has no row: run `archiver migrate`")
        }
    }

    static func streamRows(
        _ plan: CatalogExportPlan, on connection: CatalogConnection, logger: Logger, onSnapshot: (String) async throws -> Void,
        _ emit: (String) async throws -> Void
    ) async throws -> String {
        let whole = plan.whole
        let since = plan.sinceXmin ?? "0"
        // Lease bookkeeping, presigned URLs (which carry signatures), `export_xid` and a source's owner stay out of
        // the export (accounts, with their password hashes, never go to the bucket; a rebuilt catalog's sources
        // have no owner until an admin gives them one, so they are visible to admins only, never to the wrong person). So
        // does every name, path, time and note of an encrypted source: the export is in the bucket, and the bucket
        // holds those only sealed (the source's `encryption.sealed_source`, each file's `details.sealed`).
        let queries: [PostgresQuery] = [
            """
            SELECT (jsonb_build_object('type', 'source') || CASE WHEN s.encryption IS NULL THEN to_jsonb(s) - 'export_xid' - 'owner_id' - 'catalog_epoch_xact'
                ELSE (to_jsonb(s) - 'note' - 'origin' - 'export_xid' - 'owner_id' - 'catalog_epoch_xact') || jsonb_build_object('label', 'encrypted-source-' || s.id, 'metadata', '{}'::jsonb) END)::text
            FROM sources s WHERE \(whole) OR s.export_xid >= \(since)::xid8 ORDER BY id
            """,
            """
            SELECT (jsonb_build_object('type', 'bundle') || (to_jsonb(b) - 'owner' - 'export_xid'))::text FROM bundles b
            WHERE \(whole) OR b.export_xid >= \(since)::xid8 ORDER BY id
            """,
            """
            SELECT (jsonb_build_object('type', 'file') || CASE WHEN s.encryption IS NULL THEN e.row
                ELSE (e.row - 'name' - 'path' - 'raw_path' - 'modified_at' - 'error') || jsonb_build_object(
                    'name', '', 'path', 'encrypted/' || f.id,
                    'details', jsonb_strip_nulls(jsonb_build_object('encryption', f.details->'encryption', 'sealed', f.details->'sealed',
                        'rescue_map_key', f.details->'rescue_map_key'))) END)::text
            FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id,
                LATERAL (SELECT to_jsonb(f) - 'lease_owner' - 'lease_token' - 'lease_expires_at' - 'lease_from_state'
                         - 'signed_download_url' - 'signed_download_url_expires_at' - 'run_after' - 'export_xid' AS row) e
            WHERE \(whole) OR f.export_xid >= \(since)::xid8
            ORDER BY f.id
            """,
            """
            SELECT (jsonb_build_object('type', 'delete_request') || (to_jsonb(d) - 'export_xid'))::text FROM objectstoragedeletelog d
            WHERE \(whole) OR d.export_xid >= \(since)::xid8 ORDER BY id
            """,
        ]
        // One snapshot for every table and for the xmin the next export continues from. Rows stream while `emit`
        // runs: a failure mid-stream is wrapped too, `emit`'s own errors pass through.
        return try await CatalogError.wrapping("read the catalog for the export") {
            _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            do {
                var xmin = "0"
                for try await value in try await connection.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", logger: logger)
                    .decode(String.self) { xmin = value }
                try await onSnapshot(xmin)
                for query in queries {
                    for try await line in try await connection.query(query, logger: logger).decode(String.self) {
                        try await emit(line)
                    }
                }
                _ = try await connection.query("COMMIT", logger: logger)
                return xmin
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}
