import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
import SystemIO

/// The admin's retry of a failed file (`AdminCatalog.retry`, the admin page's button), with the real uploader and
/// archiver: a file that failed for good (its staging copy was missing) is queued again once the copy is back, and
/// its duplicate in another source, failed with it, follows it to the archive.
@Suite("archiver: retrying a failed file")
struct RetryFailedTests {
    @Test("a permanently failed file, its staging copy restored, retried: archived, its duplicate with it; a file that did not fail or has no staged copy is refused")
    func retry() async throws {
        try await PipelineHarness.with(.file) { harness in
            let big = PipelineHarness.bytes(count: 600_000, seed: 5)
            try harness.write("a.txt", PipelineHarness.bytes(count: 3_000, seed: 4))
            try harness.write("big.bin", big)
            #expect(try await harness.upload(label: "A").status == 0)
            let other = harness.work.path + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: other + "/copy.bin", contents: Data(big))
            #expect(try await harness.upload(label: "B", path: other).status == 0)

            let rows = try await harness.rows()
            let bigRow = try #require(rows.first { $0.path == "big.bin" })
            let copyRow = try #require(rows.first { $0.path == "copy.bin" })
            #expect(copyRow.state == "duplicate" && copyRow.duplicateOf == bigRow.id, "\(copyRow)")
            let key = try #require(bigRow.storageKey)
            let stored = harness.work.path + "/staging/" + key
            let aside = try TemporaryDirectory("aside")
            defer { aside.remove() }
            try FileManager.default.moveItem(atPath: stored, toPath: aside.path + "/kept")

            let failed = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(failed.status == 0, "\(failed.output)")
            let afterFailure = try await harness.rows()
            #expect(afterFailure.first { $0.id == bigRow.id }?.state == "failed")
            #expect(afterFailure.first { $0.id == copyRow.id }?.state == "failed", "the duplicate fails with its holder")
            #expect(try await harness.sourceState("A") != "archived")

            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let admin = AdminCatalog(client: client, logger: TestEnvironment.logger)
                let aRow = try #require(afterFailure.first { $0.path == "a.txt" })
                #expect(try await admin.retry(fileID: aRow.id) == .notFailed)
                // (the store may have removed the emptied directory)
                try FileManager.default.createDirectory(atPath: (stored as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.moveItem(atPath: aside.path + "/kept", toPath: stored)
                #expect(try await admin.retry(fileID: bigRow.id) == .queued("staged"))
                #expect(try await admin.retry(fileID: bigRow.id) == .notFailed, "once")
            }
            let retried = try await harness.rows()
            #expect(retried.first { $0.id == copyRow.id }?.state == "duplicate", "the duplicate follows its holder again")

            let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.rows().first { $0.id == bigRow.id }?.state == "archived")
            #expect(try await harness.sourceState("A") == "archived")
            #expect(try await harness.sourceState("B") == "archived")

            // A failed file whose staging copy is gone cannot be retried from the server.
            try await harness.execute("UPDATE objectstoragefiles SET state = 'failed', storage = NULL, storage_key = NULL, error = 'x' WHERE path = 'a.txt'")
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let id = try #require(try await harness.rows().first { $0.path == "a.txt" }?.id)
                #expect(try await AdminCatalog(client: client, logger: TestEnvironment.logger).retry(fileID: id) == .noStagedCopy)
            }
        }
    }
}
