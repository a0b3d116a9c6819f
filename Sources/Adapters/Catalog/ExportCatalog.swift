import Logging
import PostgresNIO

/// The catalog as JSON lines, for the export the archiver writes to the archive bucket: one advisory lock so that
/// one export runs at a time, and the rows streamed in order (sources, bundles, files, delete requests).
public struct ExportCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Runs `body` holding the export lock, handing it a function that streams every row as one JSON text line.
    /// Returns nil without running `body` when another export holds the lock and `waitingForOthers` is false.
    public func withExportLock<Result: Sendable>(
        waitingForOthers: Bool,
        _ body: (_ streamRows: (_ emit: (String) async throws -> Void) async throws -> Void) async throws -> Result
    ) async throws -> Result? {
        try await CatalogError.wrapping("export the catalog") {
            try await client.withConnection { connection in
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
                    let result = try await body { emit in try await Self.streamRows(on: connection, logger: logger, emit) }
                    try await unlock()
                    return result
                } catch {
                    try? await unlock()
                    throw error
                }
            }
        }
    }

    private static func streamRows(on connection: PostgresConnection, logger: Logger, _ emit: (String) async throws -> Void) async throws {
        // Lease bookkeeping and presigned URLs (which carry signatures) stay out of the export. So does every
        // name, path, time and note of an encrypted source: the export is in the bucket, and the bucket holds
        // those only sealed (the source's `encryption.sealed_source`, each file's `details.sealed`).
        let queries: [PostgresQuery] = [
            """
            SELECT (jsonb_build_object('type', 'source') || CASE WHEN s.encryption IS NULL THEN to_jsonb(s)
                ELSE (to_jsonb(s) - 'note' - 'origin') || jsonb_build_object('label', 'encrypted-source-' || s.id, 'metadata', '{}'::jsonb) END)::text
            FROM sources s ORDER BY id
            """,
            "SELECT (jsonb_build_object('type', 'bundle') || (to_jsonb(b) - 'owner'))::text FROM bundles b ORDER BY id",
            """
            SELECT (jsonb_build_object('type', 'file') || CASE WHEN s.encryption IS NULL THEN e.row
                ELSE (e.row - 'name' - 'path' - 'raw_path' - 'modified_at' - 'error') || jsonb_build_object(
                    'name', '', 'path', 'encrypted/' || f.id,
                    'details', jsonb_strip_nulls(jsonb_build_object('encryption', f.details->'encryption', 'sealed', f.details->'sealed',
                        'rescue_map_key', f.details->'rescue_map_key'))) END)::text
            FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id,
                LATERAL (SELECT to_jsonb(f) - 'lease_owner' - 'lease_token' - 'lease_expires_at' - 'lease_from_state'
                         - 'signed_download_url' - 'signed_download_url_expires_at' - 'run_after' AS row) e
            ORDER BY f.id
            """,
            "SELECT (jsonb_build_object('type', 'delete_request') || to_jsonb(d))::text FROM objectstoragedeletelog d ORDER BY id",
        ]
        // Rows stream while `emit` runs: a failure mid-stream is wrapped too, `emit`'s own errors pass through.
        try await CatalogError.wrapping("read the catalog for the export") {
            for query in queries {
                for try await line in try await connection.query(query, logger: logger).decode(String.self) {
                    try await emit(line)
                }
            }
        }
    }
}
