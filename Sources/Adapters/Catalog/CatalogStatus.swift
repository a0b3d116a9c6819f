import Logging
import PostgresNIO

/// Facts about the database itself, for `database status` and health checks.
public enum CatalogStatus {
    /// The server's version string and the newest applied migration (nil before the first migration).
    public static func read(_ client: PostgresClient, logger: Logger) async throws -> (server: String, schemaVersion: Int?) {
        try await CatalogError.wrapping("read the database status") {
            var server = "unknown"
            for try await version in try await client.catalogQuery("SHOW server_version", logger: logger).decode(String.self) {
                server = "PostgreSQL \(version)"
            }
            var schemaVersion: Int?
            for try await exists in try await client.catalogQuery("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger).decode(Bool.self) where exists {
                for try await version in try await client.catalogQuery("SELECT max(version) FROM schema_migrations", logger: logger).decode(Int?.self) {
                    schemaVersion = version
                }
            }
            return (server, schemaVersion)
        }
    }
}
