import Logging
import PostgresNIO

/// One versioned change to the catalog schema. Applied migrations are never edited: add a new one instead
/// (the fingerprint check refuses a database whose recorded migration text differs).
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// FNV-1a over the statements: enough to notice an edited migration, not a security measure.
    public var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in statements.joined(separator: ";\n").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

public struct MigrationReport: Sendable, Hashable {
    /// Versions this call applied, in order.
    public var applied: [Int]
    /// The schema version after the call.
    public var currentVersion: Int
}

/// Applies `CatalogSchema.migrations` that the database does not have yet.
///
/// All pending migrations run in one transaction that first takes a transaction-scoped advisory lock, so any
/// number of processes may start at once: one applies, the others wait and then find nothing to do.
public struct Migrator: Sendable {
    /// An arbitrary constant naming this project's migration lock ("pbackup" in ASCII).
    static let advisoryLockKey: Int64 = 0x7062_6163_6b75_70

    let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration] = CatalogSchema.migrations, logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    @discardableResult
    public func migrate(_ client: PostgresClient) async throws -> MigrationReport {
        try await CatalogError.wrapping("migrate the catalog", code: .migrationFailed) {
            try await client.withCatalogTransaction(logger: logger) { connection in
                try await migrate(in: connection)
            }
        }
    }

    private func migrate(in connection: CatalogConnection) async throws -> MigrationReport {
        _ = try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
        // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can otherwise fail on pg_type. Only when
        // missing: PostgreSQL checks the CREATE privilege even when the table exists, and a least-privilege role
        // (the uploader's, infra/sql/uploader-role.sql) has none.
        var tableExists = false
        for try await exists in try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger).decode(Bool.self) {
            tableExists = exists
        }
        if !tableExists {
            _ = try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """, logger: logger)
        }

        var recorded: [Int: String] = [:]
        for try await (version, fingerprint) in try await connection.query(
            "SELECT version, fingerprint FROM schema_migrations", logger: logger
        ).decode((Int, String).self) {
            recorded[version] = fingerprint
        }

        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            if let fingerprint = recorded[migration.version] {
                guard fingerprint == migration.fingerprint else {
                    throw CatalogError(.schemaTampered, "catalog migration \(migration.version) (\(migration.name)) in the database differs from this program's; do not edit applied migrations")
                }
                continue
            }
            for statement in migration.statements {
                _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            _ = try await connection.query(
                "INSERT INTO schema_migrations (version, name, fingerprint) VALUES (\(migration.version), \(migration.name), \(migration.fingerprint))",
                logger: logger)
            applied.append(migration.version)
            logger.info("applied catalog migration", metadata: ["catalog.migration.version": "\(migration.version)", "catalog.migration.name": "\(migration.name)"])
        }

        let newest = max(recorded.keys.max() ?? 0, migrations.map(\.version).max() ?? 0)
        if let unknown = recorded.keys.max(), unknown > (migrations.map(\.version).max() ?? 0) {
            // A newer program migrated this database (rolling deploy); new migrations only add, so go on.
            logger.warning("the catalog has migrations newer than this program", metadata: ["catalog.migration.version": "\(unknown)"])
        }
        return MigrationReport(applied: applied, currentVersion: newest)
    }
}
