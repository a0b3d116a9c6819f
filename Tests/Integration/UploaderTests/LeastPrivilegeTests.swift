import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
import SystemIO

/// infra/sql/uploader-role.sql, the uploader's own PostgreSQL role in the deployed stack, applied with psql to the
/// test server: the real uploader works with exactly those grants, and the role cannot do more.
@Suite("the uploader's least-privilege database role")
struct LeastPrivilegeTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("with only infra/sql/uploader-role.sql's grants the uploader uploads, re-runs and versions; deletes and DDL are refused")
    func uploaderRoleIsEnough() async throws {
        try await UploaderHarness.with(.file) { harness in
            // The catalog is created by a program with full rights first, as the deploy workflow's migrate task does.
            let migrated = try await Program.run("uploader", ["migrate"], environment: harness.environment)
            try #require(migrated.status == 0, "\(migrated.output)")
            // Accounts are made with full rights too; the restricted uploader only looks its owner up.
            let keeper = try await Program.run("uploader", ["users", "add", "keeper"], standardInput: "a long enough password", environment: harness.environment)
            try #require(keeper.status == 0, "\(keeper.output)")

            let role = TestEnvironment.uniqueName("uploader")
            let password = "pw-" + UUID().uuidString
            let script = try String(contentsOfFile: Self.repositoryRoot + "/infra/sql/uploader-role.sql", encoding: .utf8)
                .replacingOccurrences(of: "backup_uploader", with: role)
                .replacingOccurrences(of: "ON DATABASE backup ", with: "ON DATABASE \(harness.database.url.database) ")
            let scriptPath = harness.work.path + "/role.sql"
            try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
            let admin = harness.database.url
            guard case .tcp(let host, let port) = admin.endpoint else { throw TestEnvironment.Missing(variable: "a TCP TEST_DATABASE_URL") }
            let psql = (ProcessInfo.processInfo.environment["TEST_POSTGRES_BIN_DIR"].map { $0 + "/psql" }) ?? "/usr/bin/psql"
            let applied = try await Subprocess.run(
                psql, ["-v", "ON_ERROR_STOP=1", "-v", "uploader_password=\(password)", "-f", scriptPath, "-q", "postgres://\(admin.user)@\(host):\(port)/\(admin.database)?sslmode=disable"],
                environment: ["PATH": "/usr/bin:/bin", "PGPASSWORD": admin.password?.revealed ?? ""])
            try #require(applied.status == 0, "\(applied.output)")
            let restrictedText = "postgres://\(role):\(password)@\(host):\(port)/\(admin.database)?sslmode=disable"
            let restricted = try DatabaseURL(parsing: restrictedText)
            var environment = harness.environment
            environment["DATABASE_URL"] = restrictedText

            try harness.write("docs/a.txt", "first")
            try harness.write("docs/b.txt", "second")
            try harness.write("docs/b copy.txt", "second")
            let first = try await Program.run("uploader", ["upload", harness.source.path, "--label", "Restricted", "--json"], environment: environment)
            #expect(first.status == 0, "\(first.output)")
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'Restricted'", as: String.self) == "keeper",
                    "the only user owns the source, recorded with the role's grants")
            try harness.write("docs/a.txt", "changed")
            let second = try await Program.run("uploader", ["upload", harness.source.path, "--label", "Restricted", "--json"], environment: environment)
            #expect(second.status == 0, "\(second.output)")
            let rows = try await harness.rows()
            #expect(rows.count == 4, "\(rows.map { ($0.path, $0.version, $0.state) })")
            #expect(rows.filter { $0.path == "docs/a.txt" }.map(\.version).sorted() == [1, 2])
            // Each run was a snapshot; forgetting one writes the delete log, which this role may not.
            let snapshots = try await Program.run("uploader", ["snapshots", "--source", "Restricted", "--json"], environment: environment)
            #expect(snapshots.status == 0 && snapshots.output.split(separator: "\n").filter { $0.contains("\"snapshot\"") }.count == 2, "\(snapshots.output)")
            let forget = try await Program.run("uploader", ["forget", "--source", "Restricted", "--keep-last", "1"], environment: environment)
            #expect(forget.status != 0 && forget.output.contains("permission denied"), "\(forget.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM snapshots", as: Int64.self) == 2, "nothing forgotten")

            // What the role may not do.
            try await CatalogDatabase.withClient(restricted, logger: TestEnvironment.logger) { client in
                for statement in ["DELETE FROM objectstoragefiles", "SELECT count(*) FROM workers", "CREATE TABLE intruder (id int)", "DROP TABLE sources",
                                  "SELECT password_hash FROM users", "SELECT count(*) FROM user_sessions", "SELECT count(*) FROM api_tokens", "INSERT INTO users (name, role, password_hash) VALUES ('x', 'admin', '$2b$x')"] {
                    await #expect(throws: (any Error).self, "\(statement) must be refused") {
                        _ = try await client.query(PostgresQuery(unsafeSQL: statement), logger: TestEnvironment.logger).collect()
                    }
                }
            }
            // The role is cluster-wide: its grants go with the test's database, then the role itself.
            try await harness.database.drop()
            try await CatalogDatabase.withClient(try TestEnvironment.adminDatabaseURL(), logger: TestEnvironment.logger) { client in
                _ = try await client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"), logger: TestEnvironment.logger).collect()
            }
        }
    }
}
