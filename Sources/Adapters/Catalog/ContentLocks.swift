import Logging
import PostgresNIO

/// The one lock protocol between everything that decides who holds a content (the uploader's and the archiver's
/// dedupe) and what releases it (the delete processor): transaction-scoped advisory locks on the content's SHA-256
/// and on the (source, path) of the files concerned, taken in one statement in ascending key order, so two
/// transactions can never wait for each other in a cycle. Every caller takes these before any row lock.
enum ContentLocks {
    static func lock(hashes: [String], paths: [(path: String, sourceID: Int64)], on connection: CatalogConnection, logger: Logger) async throws {
        guard !hashes.isEmpty || !paths.isEmpty else { return }
        _ = try await connection.query("""
            SELECT count(pg_advisory_xact_lock(key)) FROM (
                SELECT key FROM (
                    SELECT hashtextextended(h, 0) AS key FROM unnest(\(hashes)::text[]) AS h
                    UNION
                    SELECT hashtextextended(p, s) FROM unnest(\(paths.map(\.path))::text[], \(paths.map(\.sourceID))::bigint[]) AS x(p, s)
                ) AS keys ORDER BY key
            ) AS sorted
            """, logger: logger)
    }
}
