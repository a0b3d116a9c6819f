@testable import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
import SystemIO

@Suite("Catalog migrations against a real PostgreSQL")
struct MigrationTests {
    let logger = TestEnvironment.logger

    @Test("an empty database gets every table and the seed's columns")
    func migratesEmptyDatabase() async throws {
        try await TestDatabase.withFresh { _, client in
            let report = try await Migrator(logger: logger).migrate(client)
            #expect(report.applied == CatalogSchema.migrations.map(\.version))
            #expect(report.currentVersion == CatalogSchema.migrations.map(\.version).max())

            let tables = try await strings(client, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            for table in ["objectstoragefiles", "objectstoragedeletelog", "sources", "workers", "bundles", "schema_migrations"] {
                #expect(tables.contains(table), "missing table \(table)")
            }
            let columns = try await strings(client, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'objectstoragefiles'")
            let contract = [
                "id", "name", "path", "storage", "version", "hash", "signed_download_url", "size_bytes", "source_id", "kind",
                "state", "attempts", "lease_owner", "lease_token", "lease_expires_at", "error", "created_at", "updated_at",
                "archive_key", "bundle_id", "bundle_offset", "stored_size_bytes", "duplicate_of",
            ]
            for column in contract {
                #expect(columns.contains(column), "ObjectStorageFiles lacks \(column)")
            }
            let deleteLogColumns = try await strings(client, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'objectstoragedeletelog'")
            #expect(Set(["file_id", "requested_at", "processed_at"]).isSubset(of: Set(deleteLogColumns)))
        }
    }

    @Test("a catalog made before snapshots gets snapshot 1 per source: the newest live version of every path")
    func snapshotsOfAnOlderCatalog() async throws {
        try await TestDatabase.withFresh { _, client in
            let before = CatalogSchema.migrations.filter { $0.version < 11 }
            try await Migrator(migrations: before, logger: logger).migrate(client)
            try await client.query("INSERT INTO sources (label) VALUES ('Old'), ('Empty')", logger: logger).collect()
            for (path, version, deleted) in [("a.txt", 1, false), ("a.txt", 2, false), ("b.txt", 1, false), ("c.txt", 1, true)] {
                try await client.query("""
                    INSERT INTO objectstoragefiles (source_id, name, path, version, kind, size_bytes, hash, state, deleted_at)
                    VALUES ((SELECT id FROM sources WHERE label = 'Old'), \(path), \(path), \(version), 'regular', \(version * 10),
                            encode(sha256(convert_to(\(path) || \(version), 'UTF8')), 'hex'), 'staged', CASE WHEN \(deleted) THEN now() END)
                    """, logger: logger).collect()
            }
            try await Migrator(logger: logger).migrate(client)
            let snapshots = try await strings(client, "SELECT s.label || ':' || n.number || ':' || n.files || ':' || n.bytes FROM snapshots n JOIN sources s ON s.id = n.source_id")
            #expect(snapshots == ["Old:1:2:30"], "one snapshot for the source with files: a.txt v2 and b.txt")
            let members = try await strings(client, """
                SELECT sf.path || ' v' || f.version FROM snapshot_files((SELECT id FROM sources WHERE label = 'Old'), 1) sf
                JOIN objectstoragefiles f ON f.id = sf.file_id ORDER BY sf.path
                """)
            #expect(members == ["a.txt v2", "b.txt v1"])
        }
    }

    @Test("the table answers to ObjectStorageFiles and objectstoragefiles alike")
    func unquotedTableName() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let source = try await insertSource(client, label: "DVD 12")
            _ = try await client.query("""
                INSERT INTO ObjectStorageFiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                VALUES (\(source), 'a.txt', 'docs/a.txt', 'regular', 3, \(String(repeating: "ab", count: 32)), 'staging', 'k')
                """, logger: logger).collect()
            let upper = try await strings(client, "SELECT path FROM ObjectStorageFiles")
            let lower = try await strings(client, "SELECT path FROM objectstoragefiles")
            #expect(upper == ["docs/a.txt"])
            #expect(lower == upper)
            let version = try await strings(client, "SELECT version::text || ' ' || state || ' ' || attempts::text FROM objectstoragefiles")
            #expect(version == ["1 staged 0"])
        }
    }

    @Test("running the migrations again changes nothing")
    func rerunIsNoOp() async throws {
        try await TestDatabase.withFresh { _, client in
            let migrator = Migrator(logger: logger)
            try await migrator.migrate(client)
            let second = try await migrator.migrate(client)
            #expect(second.applied.isEmpty)
            let recorded = try await strings(client, "SELECT version::text FROM schema_migrations ORDER BY schema_migrations.version")
            #expect(recorded == CatalogSchema.migrations.map { String($0.version) })
        }
    }

    @Test("a migration edited after it was applied is refused")
    func editedMigrationIsRefused() async throws {
        try await TestDatabase.withFresh { _, client in
            let original = Migration(version: 1, name: "probe", statements: ["CREATE TABLE probe (id INT)"])
            try await Migrator(migrations: [original], logger: logger).migrate(client)
            let edited = Migration(version: 1, name: "probe", statements: ["CREATE TABLE probe (id BIGINT)"])
            await #expect(throws: CatalogError.self) {
                try await Migrator(migrations: [edited], logger: logger).migrate(client)
            }
        }
    }

    @Test("a failing migration leaves nothing half-applied")
    func failedMigrationRollsBack() async throws {
        try await TestDatabase.withFresh { _, client in
            let broken = Migration(version: 1, name: "broken", statements: ["CREATE TABLE half (id INT)", "CREATE TABLE half (id INT)"])
            await #expect(throws: CatalogError.self) {
                try await Migrator(migrations: [broken], logger: logger).migrate(client)
            }
            let tables = try await strings(client, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            #expect(!tables.contains("half"))
            #expect(!tables.contains("schema_migrations"), "the bookkeeping table is part of the rolled-back transaction")
        }
    }

    @Test("five processes migrating one database at once: all succeed, each migration applied once")
    func concurrentProcesses() async throws {
        let database = try await TestDatabase.create()
        do {
            try await migrateConcurrently(database)
        } catch {
            try? await database.drop()
            throw error
        }
        try await database.drop()
    }

    private func migrateConcurrently(_ database: TestDatabase) async throws {
        let environment = ["DATABASE_URL": try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(
            of: "/postgres?", with: "/\(database.url.database)?")]
        let results = try await withThrowingTaskGroup(of: Subprocess.Result.self) { group in
            for program in ["uploader", "archiver", "transcoder", "status-server", "pipeline"] {
                group.addTask { try await Program.run(program, ["migrate"], environment: environment) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results {
            #expect(result.status == 0, "migrate failed: \(result.output)")
        }
        let appliers = results.filter { $0.output.contains("applied 1") }
        #expect(appliers.count == 1, "exactly one process applies the migration: \(results.map(\.output))")
        try await CatalogDatabase.withClient(database.url, logger: logger) { client in
            let recorded = try await strings(client, "SELECT version::text FROM schema_migrations")
            #expect(recorded == CatalogSchema.migrations.map { String($0.version) })
        }
    }

    @Test("the schema rejects rows that break the state rules")
    func constraintsHold() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let source = try await insertSource(client, label: "Drive A")
            let hash = String(repeating: "0f", count: 32)
            // Unknown state.
            await #expect(throws: PSQLError.self) {
                try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash), 'done')", logger: logger).collect()
            }
            // Upper-case hash.
            await #expect(throws: PSQLError.self) {
                try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash.uppercased()))", logger: logger).collect()
            }
            // A duplicate must say of what.
            await #expect(throws: PSQLError.self) {
                try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash), 'duplicate')", logger: logger).collect()
            }
            // Archived without an archive key.
            await #expect(throws: PSQLError.self) {
                try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash), 'archived')", logger: logger).collect()
            }
            // The same path and version twice.
            _ = try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash))", logger: logger).collect()
            await #expect(throws: PSQLError.self) {
                try await client.query("INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash) VALUES (\(source), 'x', 'x', 'regular', 1, \(hash))", logger: logger).collect()
            }
            // The delete log keeps its history.
            _ = try await client.query("INSERT INTO ObjectStorageDeleteLog (file_id) SELECT id FROM objectstoragefiles", logger: logger).collect()
            await #expect(throws: PSQLError.self) {
                try await client.query("DELETE FROM ObjectStorageDeleteLog", logger: logger).collect()
            }
            let logRows = try await strings(client, "SELECT count(*)::text FROM objectstoragedeletelog")
            #expect(logRows == ["1"])
        }
    }

    @Test("the claim and lease-expiry queries use their indexes")
    func indexesServeTheHotQueries() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let source = try await insertSource(client, label: "bulk")
            // Enough rows that the planner prefers an index when one fits.
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, archive_key, archived_at)
                SELECT \(source), 'f' || n, 'p/' || n, 'regular', n, lpad(to_hex(n), 64, '0'),
                       CASE WHEN n % 100 = 0 THEN 'staged' ELSE 'archived' END,
                       CASE WHEN n % 100 = 0 THEN NULL ELSE 'k' || n END,
                       CASE WHEN n % 100 = 0 THEN NULL ELSE now() END
                FROM generate_series(1, 20000) AS n
                """, logger: logger).collect()
            _ = try await client.query("ANALYZE objectstoragefiles", logger: logger).collect()
            let claimPlan = try await strings(client, """
                EXPLAIN SELECT id FROM objectstoragefiles WHERE state = 'staged' AND kind = 'regular' AND run_after <= now()
                ORDER BY run_after, id LIMIT 10 FOR UPDATE SKIP LOCKED
                """).joined(separator: "\n")
            #expect(claimPlan.contains("objectstoragefiles_claim_idx"), "claim plan:\n\(claimPlan)")
            let leasePlan = try await strings(client, "EXPLAIN SELECT id FROM objectstoragefiles WHERE state IN ('transcoding', 'archiving') AND lease_expires_at < now()").joined(separator: "\n")
            #expect(leasePlan.contains("objectstoragefiles_lease_idx"), "lease plan:\n\(leasePlan)")
        }
    }

    @Test("the sweep's retirement of replaced bundles reads them by their index, not every archived bundle; archived ones only when asked")
    func replacedBundlesByIndex() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            // 20,000 archived bundles with no member (so every one is retirable), and 3 replaced ones.
            _ = try await client.query("""
                INSERT INTO bundles (archive_key, state, member_count)
                SELECT 'bundles/' || n, CASE WHEN n % 7000 = 0 THEN 'replaced' ELSE 'archived' END, 1
                FROM generate_series(1, 20000) AS n
                """, logger: logger).collect()
            _ = try await client.query("ANALYZE bundles", logger: logger).collect()
            let plan = try await strings(client, "EXPLAIN " + ArchiveCatalog.retirementSQL(archivedToo: false)).joined(separator: "\n")
            #expect(plan.contains("bundles_replaced_idx") && !plan.contains("Seq Scan on bundles"), "plan:\n\(plan)")

            let catalog = ArchiveCatalog(client: client, logger: logger)
            let replacedOnly = try await catalog.retireUnusedBundles(archivedToo: false)
            #expect(replacedOnly.count == 2)
            let remaining = try await strings(client, "SELECT count(*)::text FROM bundles WHERE state = 'archived'")
            #expect(remaining == ["19998"])
            let everything = try await catalog.retireUnusedBundles(archivedToo: true)
            #expect(everything.count == 19998)
            let queued = try await strings(client, "SELECT count(*)::text FROM pending_object_deletes WHERE area = 'archive'")
            #expect(queued == ["20000"])
        }
    }

    @Test("the status page's kept-raw videos are read through their partial index, not a scan of every row")
    func keptRawByIndex() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let source = try await insertSource(client, label: "tapes")
            // 20,000 rows, of which 40 videos kept raw and 40 whose transcode failed (and one more, deleted).
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, archive_key, archived_at, details, deleted_at)
                SELECT \(source), 'f' || n, 'p/' || n, CASE WHEN n % 500 = 0 OR n % 500 = 1 OR n = 7 THEN 'video' ELSE 'regular' END, n,
                       lpad(to_hex(n), 64, '0'), 'archived', 'k' || n, now(),
                       CASE WHEN n % 500 = 0 THEN '{"kept_raw": ["timestamps jump"]}'::jsonb
                            WHEN n % 500 = 1 OR n = 7 THEN '{"transcode_failed": "decoder error"}'::jsonb ELSE '{}'::jsonb END,
                       CASE WHEN n = 7 THEN now() END
                FROM generate_series(1, 20000) AS n
                """, logger: logger).collect()
            _ = try await client.query("ANALYZE objectstoragefiles", logger: logger).collect()
            let plan = try await strings(client, "EXPLAIN " + StatusCatalog.keptRawSQL(limit: 10)).joined(separator: "\n")
            #expect(plan.contains("objectstoragefiles_kept_raw_idx") && !plan.contains("Seq Scan on objectstoragefiles"), "plan:\n\(plan)")
            // The window count still counts every kept-raw video (the deleted one not), not the ten shown.
            let total = try await strings(client, "SELECT total::text FROM (\(StatusCatalog.keptRawSQL(limit: 10))) AS k(total) LIMIT 1")
            #expect(total == ["80"])
        }
    }

    @Test("the status page counts an encrypted source's untranscoded videos through their partial index, not the source's every row")
    func untranscodedVideosByIndex() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let source = try await insertSource(client, label: "sealed tapes")
            _ = try await client.query("UPDATE sources SET encryption = '{\"scheme\": \"passphrase\"}' WHERE id = \(source)", logger: logger).collect()
            // 20,000 rows in the one source, 40 of them encrypted videos (one more deleted).
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, archive_key, archived_at, details, deleted_at)
                SELECT \(source), 'f' || n, 'p/' || n, CASE WHEN n % 500 = 0 OR n = 7 THEN 'video' ELSE 'regular' END, n,
                       lpad(to_hex(n), 64, '0'), 'archived', 'k' || n, now(),
                       CASE WHEN n % 500 = 0 OR n = 7 THEN '{"video_not_transcoded": "encrypted"}'::jsonb ELSE '{}'::jsonb END,
                       CASE WHEN n = 7 THEN now() END
                FROM generate_series(1, 20000) AS n
                """, logger: logger).collect()
            _ = try await client.query("ANALYZE objectstoragefiles", logger: logger).collect()
            let plan = try await strings(client, "EXPLAIN " + StatusCatalog.sourcesSQL).joined(separator: "\n")
            #expect(plan.contains("objectstoragefiles_video_not_transcoded_idx") && !plan.contains("objectstoragefiles_source_state_idx"), "plan:\n\(plan)")
            let counted = try await strings(client, "SELECT videos::text FROM (\(StatusCatalog.sourcesSQL)) AS s(a, b, c, d, e, f, g, h, i, videos)")
            #expect(counted == ["40"])
        }
    }

    private func strings(_ client: PostgresClient, _ sql: String) async throws -> [String] {
        var values: [String] = []
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(String.self) {
            values.append(value)
        }
        return values
    }

    private func insertSource(_ client: PostgresClient, label: String) async throws -> Int64 {
        let rows = try await client.query("INSERT INTO sources (label, metadata) VALUES (\(label), '{\"year\": \"2008\"}'::jsonb) RETURNING id", logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw CatalogError(.migrationFailed, "no source id returned")
    }
}
