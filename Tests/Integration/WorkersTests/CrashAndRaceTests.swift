import SystemIO
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
@testable import ArchiveStep
@testable import JobQueue
@testable import TranscodeStep

/// Workers dying at the worst moments, and several workers on one queue.
@Suite("archiver crash safety and concurrency")
struct CrashAndRaceTests {
    static func makeTree(_ harness: PipelineHarness, smallFiles: Int) throws {
        for index in 0..<smallFiles {
            try harness.write("letters/\(index).txt", Array("letter number \(index)\n".utf8) + PipelineHarness.bytes(count: 2000 + index, seed: UInt64(index)))
        }
        for index in 0..<2 {
            try harness.write("big \(index).bin", PipelineHarness.bytes(count: (1 << 20) + 1000 * index, seed: 1000 + UInt64(index)))
        }
    }

    /// The end state every test expects: all archived once, nothing left in staging, no stray archive object.
    static func expectCleanEndState(_ harness: PipelineHarness, files: Int) async throws {
        let rows = try await harness.rows()
        #expect(rows.count == files)
        #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.filter { $0.state != "archived" }.map { ($0.path, $0.state, $0.error) })")
        #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "staging copies left behind")
        #expect(try await harness.scalar("SELECT count(*) FROM pending_object_deletes", as: Int64.self) == 0)
        #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state IN ('open', 'uploading')", as: Int64.self) == 0)
        // Every bundle member is in exactly one archived bundle, and the bundles hold nothing else.
        #expect(try await harness.scalar(
            "SELECT coalesce(sum(member_count), 0)::bigint FROM bundles WHERE state = 'archived'", as: Int64.self)
            == (try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE bundle_id IS NOT NULL", as: Int64.self)))
        // Every archive object is referenced: no orphan from the dead worker survives the sweep.
        let referenced = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var keys = Set<String>()
            let query: PostgresQuery = """
                SELECT archive_key FROM objectstoragefiles WHERE archive_key IS NOT NULL
                UNION SELECT archive_key FROM bundles WHERE state = 'archived'
                UNION SELECT manifest_key FROM bundles WHERE state = 'archived'
                """
            for try await key in try await client.query(query, logger: TestEnvironment.logger).decode(String.self) { keys.insert(key) }
            return keys
        }
        let stored = Set(try await PipelineHarness.allKeys(harness.archive).filter { !$0.hasPrefix("catalog/") })
        #expect(stored == referenced, "unreferenced: \(stored.subtracting(referenced)), missing: \(referenced.subtracting(stored))")
        _ = try await BundleCheck.verifyAllBundles(harness)
    }

    @Test("killed (SIGKILL) at each step, a restarted archiver finishes: nothing lost, nothing stored twice, no orphans",
          arguments: ArchiveCrashPoint.allCases)
    func crashAndRestart(_ point: ArchiveCrashPoint) async throws {
        try await PipelineHarness.with(.file) { harness in
            try Self.makeTree(harness, smallFiles: 20)
            #expect(try await harness.upload(label: "crash \(point.rawValue)").status == 0)
            let options = ["--small-file-threshold", "1MiB", "--batch-size", "100"]
            let standard = ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]
            let crashed = try await harness.archiveOnce(options, environment: standard.merging(["BACKUP_ARCHIVER_CRASH_AT": point.rawValue]) { $1 })
            #expect(crashed.status != 0, "the crash point \(point.rawValue) was never reached")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'archiving'", as: Int64.self)! > 0
                    || point == .recorded || point == .exportUploaded)
            // The dead worker's leases (3 s) expire and its heartbeat goes stale (3 × lease) before the restart.
            try await Task.sleep(for: .seconds(10))
            let restarted = try await harness.archiveOnce(options, environment: standard)
            #expect(restarted.status == 0, "\(restarted.output)")
            try await Self.expectCleanEndState(harness, files: 22)
        }
    }

    @Test("two archivers racing on one queue archive every file exactly once")
    func twoArchiversRace() async throws {
        try await PipelineHarness.with(.file) { harness in
            try Self.makeTree(harness, smallFiles: 300)
            #expect(try await harness.upload(label: "race").status == 0)
            let arguments = ["run", "--once", "--lease-seconds", "5", "--poll-seconds", "0.1", "--batch-size", "16", "--small-file-threshold", "1MiB"]
            let environment = harness.environment.merging(["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]) { $1 }
            let first = try Program.start("archiver", arguments, environment: environment)
            let second = try Program.start("archiver", arguments, environment: environment)
            let (a, b) = (try await first.wait(), try await second.wait())
            #expect(a.status == 0, "\(a.output)")
            #expect(b.status == 0, "\(b.output)")
            // Both did part of the work, and no claim was ever made twice while a lease was valid.
            #expect(a.output.contains("bundle archived") && b.output.contains("bundle archived"), "one worker did everything")
            // What went wrong, when something did: the workers' warnings and errors.
            let trouble = (a.output + "\n" + b.output).split(separator: "\n").filter {
                ["job failed", "bundle not archived", "lease lost", "heartbeat failed", "\"error\""].contains(where: $0.contains)
            }.prefix(20).joined(separator: "\n")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE attempts <> 1", as: Int64.self) == 0, "\(trouble)")
            try await Self.expectCleanEndState(harness, files: 302)
        }
    }

    @Test("a bundle the sweep gives up while its slow worker still stores it: the worker's record is refused, its files go back to the queue, the bundle's objects are removed, and another archiver finishes")
    func sweptBundleIsFenced() async throws {
        try await PipelineHarness.with(.file) { harness in
            for index in 0..<3 { try harness.write("note \(index).txt", "note \(index)\n") }
            #expect(try await harness.upload(label: "slow").status == 0)
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let (queue, catalog) = (WorkQueue(client: client, logger: TestEnvironment.logger), ArchiveCatalog(client: client, logger: TestEnvironment.logger))
                // The slow worker: it holds the files, but has no heartbeat (as if stalled), and has begun a bundle.
                let slowWorker = UUID()
                let claimed = try await queue.claim(.archive, workerID: slowWorker, limit: 10, lease: .seconds(600))
                #expect(claimed.count == 3)
                let items = try await catalog.load(claimed)
                let key = "bundles/2026/12/slow.tar"
                let bundleID = try await catalog.createBundle(
                    archiveKey: key, manifestKey: key + ".manifest.json", compression: "none", memberCount: 3, rawBytes: 30, owner: slowWorker)
                _ = try await harness.archive.put(key, bytes: Array("a bundle nobody will read".utf8))

                let givenUp = try await catalog.giveUpOrphanBundles(staleAfter: .seconds(90))
                #expect(givenUp.map(\.id) == [bundleID])
                #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(bundleID)", as: String.self) == "deleted")
                #expect(try await harness.scalar("SELECT count(*) FROM pending_object_deletes WHERE area = 'archive'", as: Int64.self) == 2)

                // The slow worker wakes up and records its bundle: refused, nothing points at the removed objects.
                let placements = items.enumerated().map { index, item in
                    ArchivedPlacement(item: item, archiveKey: key, bundleOffset: Int64(512 * (index + 1)), storedSize: item.contentSize, storedHash: item.contentHash)
                }
                await #expect(throws: CatalogError.self) {
                    try await catalog.recordArchived(
                        placements, bundle: BundleCompletion(bundleID: bundleID, storedBytes: 25, hash: String(repeating: "0", count: 64), storageClass: "STANDARD"),
                        workerID: slowWorker)
                }
                #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'archived' OR bundle_id IS NOT NULL", as: Int64.self) == 0)
                // A bundle that is not this worker's, or no longer uploading, is not given up by it.
                #expect(try await catalog.abandonBundle(bundleID, workerID: slowWorker).isEmpty)
                _ = try await client.query("UPDATE objectstoragefiles SET lease_expires_at = now() - interval '1 second'", logger: TestEnvironment.logger).collect()
            }
            let result = try await harness.archiveOnce(["--small-file-threshold", "1MiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(result.status == 0, "\(result.output)")
            try await Self.expectCleanEndState(harness, files: 3)
        }
    }

    @Test("a bundle its own worker could not record is given up at once: deleted, its objects queued; a recorded one is left alone")
    func unrecordedBundleIsAbandoned() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("one.txt", "only file\n")
            #expect(try await harness.upload(label: "abandon").status == 0)
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let (queue, catalog) = (WorkQueue(client: client, logger: TestEnvironment.logger), ArchiveCatalog(client: client, logger: TestEnvironment.logger))
                let worker = UUID()
                let failed = try await catalog.createBundle(archiveKey: "bundles/a.tar", manifestKey: "bundles/a.tar.manifest.json", compression: "none", memberCount: 1, rawBytes: 10, owner: worker)
                #expect(try await catalog.abandonBundle(failed, workerID: UUID()).isEmpty, "another worker's bundle")
                #expect(Set(try await catalog.abandonBundle(failed, workerID: worker)) == ["bundles/a.tar", "bundles/a.tar.manifest.json"])
                #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(failed)", as: String.self) == "deleted")
                #expect(try await catalog.abandonBundle(failed, workerID: worker).isEmpty, "given up once")

                // Its record committed though the answer was lost: the bundle is the files', and stays.
                let claimed = try await queue.claim(.archive, workerID: worker, limit: 1, lease: .seconds(600))
                let item = try #require(try await catalog.load(claimed).first)
                let recorded = try await catalog.createBundle(archiveKey: "bundles/b.tar", manifestKey: "bundles/b.tar.manifest.json", compression: "none", memberCount: 1, rawBytes: 10, owner: worker)
                let changed = try await catalog.recordArchived(
                    [ArchivedPlacement(item: item, archiveKey: "bundles/b.tar", bundleOffset: 512, storedSize: item.contentSize, storedHash: item.contentHash)],
                    bundle: BundleCompletion(bundleID: recorded, storedBytes: 2048, hash: String(repeating: "0", count: 64), storageClass: "STANDARD"),
                    workerID: worker)
                #expect(changed == [item.job.fileID])
                #expect(try await catalog.abandonBundle(recorded, workerID: worker).isEmpty)
                #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(recorded)", as: String.self) == "archived")
            }
        }
    }

    @Test("a worker stuck past its lease loses the file: another archives it, and the stuck one can no longer write it")
    func stuckWorkerLosesLease() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("one.txt", "only file\n")
            #expect(try await harness.upload(label: "stuck").status == 0)
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let queue = WorkQueue(client: client, logger: TestEnvironment.logger)
                let stuckWorker = UUID()
                let claimed = try await queue.claim(.archive, workerID: stuckWorker, limit: 10, lease: .seconds(1))
                #expect(claimed.count == 1)
                try await Task.sleep(for: .milliseconds(1500))
                let result = try await harness.archiveOnce(["--small-file-threshold", "1MiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
                #expect(result.status == 0, "\(result.output)")
                // The stuck worker wakes up: every write it tries is refused by the fencing token.
                let catalog = ArchiveCatalog(client: client, logger: TestEnvironment.logger)
                let items = try await catalog.load(claimed)
                let late = try await catalog.recordArchived(
                    [ArchivedPlacement(item: try #require(items.first), archiveKey: "files/stale", bundleOffset: nil, storedSize: 10, storedHash: String(repeating: "0", count: 64))],
                    bundle: nil, workerID: stuckWorker)
                #expect(late.isEmpty)
                #expect(try await queue.fail(claimed[0], workerID: stuckWorker, error: "late", retryAfter: .zero) == false)
                #expect(try await queue.renew(claimed[0], workerID: stuckWorker, lease: .seconds(30)) == false)
            }
            try await Self.expectCleanEndState(harness, files: 1)
            #expect(try await harness.scalar("SELECT attempts FROM objectstoragefiles", as: Int.self) == 2)
        }
    }
}
