import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

@Suite("The Catalog module throws CatalogError, never postgres-nio's errors")
struct CatalogErrorTests {
    let logger = TestEnvironment.logger

    struct DomainFailure: Error {}

    /// A migrated database whose tables are then dropped, so that every catalog statement fails on the server.
    func withBrokenCatalog(_ body: (PostgresClient) async throws -> Void) async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            _ = try await client.query("DROP SCHEMA public CASCADE", logger: logger).collect()
            _ = try await client.query("CREATE SCHEMA public", logger: logger).collect()
            try await body(client)
        }
    }

    @Test("statements that fail throw queryFailed naming the operation, with the SQLSTATE and no SQL text")
    func failedStatementsAreCatalogErrors() async throws {
        try await withBrokenCatalog { client in
            let file = IngestedFile(sourceID: 1, path: "a.txt", rawPath: nil, name: "a.txt", sizeBytes: 1, modifiedAt: nil, kind: .regular)
            let operations: [(name: String, run: () async throws -> Void)] = [
                ("claim jobs", { _ = try await WorkQueue(client: client, logger: logger).claim(.archive, workerID: UUID(), limit: 1, lease: .seconds(30)) }),
                ("open the source", {
                    _ = try await IngestCatalog(client: client, logger: logger).openSource(label: "L", metadata: [:], note: nil, origin: "test")
                }),
                // A transaction: the PostgresTransactionError is unwrapped.
                ("record the ingested files", {
                    _ = try await IngestCatalog(client: client, logger: logger).record(
                        [IngestRecord(file: file, hash: String(repeating: "ab", count: 32), stagingKey: "k", pendingID: nil)])
                }),
                ("process delete requests", { _ = try await DeleteRequests(client: client, logger: logger).processDue(grace: .zero) }),
                ("list the pending object deletes", {
                    _ = try await ArchiveCatalog(client: client, logger: logger).pendingDeletes(olderThan: .zero, limit: 1)
                }),
                ("list the sources", { _ = try await RestoreCatalog(client: client, logger: logger).sources() }),
                ("read the status", { _ = try await StatusCatalog(client: client, logger: logger).read() }),
                ("list the sources to audit", { _ = try await AuditCatalog(client: client, logger: logger).sources(label: nil) }),
                ("read the source's progress", { _ = try await SourceCompletion.read(label: "L", client: client, logger: logger) }),
                ("finish the staging delete", { try await TranscodeCatalog(client: client, logger: logger).finishDelete("k") }),
                ("check that the catalog is empty", { _ = try await RebuildCatalog(client: client, logger: logger).isEmpty() }),
                ("import the catalog export", {
                    _ = try await RebuildCatalog(client: client, logger: logger).withTransaction { try await $0.applyExport() }
                }),
                ("look for dead workers", {
                    _ = try await AlertCatalog(client: client, logger: logger).deadWorkers(deadAfter: .seconds(1), ignoreOlderThan: .seconds(60))
                }),
            ]
            for operation in operations {
                let error = await #expect(throws: CatalogError.self, "\(operation.name)") { try await operation.run() }
                guard let error else { continue }
                #expect(error.code == .queryFailed, "\(operation.name): \(error.code)")
                #expect(error.description.hasPrefix("catalog: cannot \(operation.name): "), "\(error.description)")
                #expect(error.description.contains("does not exist"), "the server's message: \(error.description)")
                for keyword in ["SELECT", "UPDATE", "INSERT", "DELETE"] {
                    #expect(!error.description.contains(keyword), "query text in: \(error.description)")
                }
                #expect(CatalogDatabase.describe(error) == error.description)
            }
            let claim = await #expect(throws: CatalogError.self) {
                _ = try await WorkQueue(client: client, logger: logger).claim(.archive, workerID: UUID(), limit: 1, lease: .seconds(30))
            }
            #expect(claim?.sqlState == "42P01", "undefined_table")
        }
    }

    @Test("the caller's own errors come out of a catalog transaction unchanged")
    func domainErrorsPassThrough() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            await #expect(throws: DomainFailure.self) {
                _ = try await RebuildCatalog(client: client, logger: logger).withTransaction { _ -> Int in throw DomainFailure() }
            }
            await #expect(throws: DomainFailure.self) {
                _ = try await ExportCatalog(client: client, logger: logger).withExportLock(waitingForOthers: false) { _ -> Int in throw DomainFailure() }
            }
        }
    }
}
