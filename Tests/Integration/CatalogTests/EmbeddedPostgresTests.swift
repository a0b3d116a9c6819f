import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

@Suite("The embedded PostgreSQL cluster", .serialized)
struct EmbeddedPostgresTests {
    @Test("the first program creates and starts the cluster, the next one reuses it")
    func startThenReuse() async throws {
        try await withDataDirectory("emb") { dataDirectory, environment in

        let first = try await Program.run("uploader", ["migrate"], environment: environment)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("creating the embedded PostgreSQL cluster"))
        #expect(first.output.contains("applied 1"))
        let cluster = EmbeddedPostgres(clusterDirectory: dataDirectory.path + "/postgres", logger: TestEnvironment.logger)
        let serverProcessID = try #require(cluster.serverProcessID())

        let second = try await Program.run("archiver", ["migrate"], environment: environment)
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains("reusing the embedded PostgreSQL cluster"))
        #expect(second.output.contains("nothing to apply"))
        #expect(cluster.serverProcessID() == serverProcessID, "the second program must not start another server")

        // A running cluster is known by one connection to its catalog: pg_ctl is not even looked for (an override
        // naming an empty directory would fail the full check, as it does below once the cluster is stopped).
        let noBinaries = try TemporaryDirectory("nopgbin")
        defer { noBinaries.remove() }
        let withoutBinaries = environment.merging([PostgresBinaries.overrideSetting: noBinaries.path]) { $1 }
        let quick = try await Program.run("uploader", ["migrate"], environment: withoutBinaries)
        #expect(quick.status == 0 && quick.output.contains("reusing the embedded PostgreSQL cluster"), "\(quick.output)")

        // It listens on its unix socket only, inside the data directory.
        let socket = dataDirectory.path + "/postgres/run/.s.PGSQL.5432"
        #expect(FileManager.default.fileExists(atPath: socket))
        let settings = try String(contentsOfFile: dataDirectory.path + "/postgres/data/personal-backup.conf", encoding: .utf8)
        #expect(settings.contains("listen_addresses = ''"))

        let stop = try await Program.run("uploader", ["database", "stop"], environment: environment)
        #expect(stop.status == 0, "\(stop.output)")
        #expect(cluster.serverProcessID() == nil)
        let fullCheck = try await Program.run("uploader", ["migrate"], environment: withoutBinaries)
        #expect(fullCheck.status == 1 && fullCheck.output.contains("no initdb and pg_ctl in"), "\(fullCheck.output)")

        // Stopped clusters start again with their data.
        let third = try await Program.run("uploader", ["database", "status"], environment: environment)
        #expect(third.status == 0, "\(third.output)")
        #expect(third.output.contains("catalog schema version: \(CatalogSchema.migrations.map(\.version).max() ?? 0)"))
        }
    }

    @Test("three programs starting at once on a new data directory share one cluster")
    func concurrentFirstStart() async throws {
        try await withDataDirectory("emc") { _, environment in

        let results = try await withThrowingTaskGroup(of: Subprocess.Result.self) { group in
            for program in ["uploader", "archiver", "pipeline"] {
                group.addTask { try await Program.run(program, ["migrate"], environment: environment) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results { #expect(result.status == 0, "\(result.output)") }
        #expect(results.filter { $0.output.contains("creating the embedded PostgreSQL cluster") }.count == 1)
        #expect(results.filter { $0.output.contains("applied 1") }.count == 1)
        }
    }

    @Test("missing PostgreSQL binaries give one clear line naming the package")
    func missingBinaries() async throws {
        let empty = try TemporaryDirectory("nopg")
        defer { empty.remove() }
        let error = #expect(throws: CatalogError.self) {
            try PostgresBinaries.locate(environment: ["PATH": empty.path], debianRoot: empty.path)
        }
        #expect(error?.code == .postgresNotInstalled)
        #expect(error?.description.contains("apt-get install postgresql") == true)

        // The same through a real program: PATH without PostgreSQL and an override naming an empty directory.
        let result = try await Program.run("uploader", ["migrate"], environment: [
            "BACKUP_DATA_DIR": empty.path, "BACKUP_POSTGRES_BIN_DIR": empty.path,
        ])
        #expect(result.status == 1)
        #expect(result.output == "error: BACKUP_POSTGRES_BIN_DIR: no initdb and pg_ctl in \(empty.path)")
        #expect(!FileManager.default.fileExists(atPath: empty.path + "/postgres/data"), "nothing is created before the binaries are found")
    }

    @Test("an unreachable database server is reported with its cause and without the password")
    func unreachableServer() async throws {
        // A port nothing listens on: bind one, note it, close it.
        let port = try TestEnvironment.freeLoopbackPort()
        let result = try await Program.run("uploader", ["migrate"], environment: [
            "DATABASE_URL": "postgres://someone:hunter2secret@127.0.0.1:\(port)/catalog?sslmode=disable",
        ])
        #expect(result.status == 1)
        #expect(result.output.contains("cannot connect to the database postgres://someone:***@127.0.0.1:\(port)/catalog"))
        #expect(result.output.contains("refused"))
        #expect(!result.output.contains("hunter2secret"))
    }

    /// A fresh data directory for `body`; the embedded cluster in it is stopped and the directory removed
    /// afterwards, whether the test passed or not.
    private func withDataDirectory(_ prefix: String, _ body: (TemporaryDirectory, [String: String]) async throws -> Void) async throws {
        let dataDirectory = try TemporaryDirectory(prefix)
        let environment = ["BACKUP_DATA_DIR": dataDirectory.path]
        let cleanUp = {
            _ = try? await Program.run("uploader", ["database", "stop"], environment: environment)
            dataDirectory.remove()
        }
        do {
            try await body(dataDirectory, environment)
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }
}
