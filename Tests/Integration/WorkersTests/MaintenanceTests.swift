import Catalog
import Foundation
import Logging
import Maintenance
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycleTestKit
import Synchronization
import SystemIO
import Testing
import TestSupport

/// The scheduled maintenance tasks on the real stack (PostgreSQL, file:// buckets, the built archiver and uploader):
/// a due task runs exactly once however many workers race for it, a dead worker's claim runs out and another worker
/// takes the task over, a long task keeps its lease, a failing task records its error and its next run, and the
/// archiver runs what is due between batches and keeps its log lines in the catalog.
@Suite("archiver: scheduled maintenance tasks", .onOwnThreads)
struct MaintenanceTests {
    static let logger = TestEnvironment.logger

    /// A harness with one small source archived by the real archiver (so there are archive objects to verify).
    static func withArchived(_ body: (PipelineHarness, PostgresClient) async throws -> Void) async throws {
        try await PipelineHarness.with(.file) { harness in
            for index in 0..<4 { try harness.write("docs/\(index).txt", PipelineHarness.bytes(count: 2_000 + index, seed: UInt64(index + 1))) }
            try harness.write("big.bin", PipelineHarness.bytes(count: 300_000, seed: 9))
            let upload = try await harness.upload(label: "Maintenance disc")
            #expect(upload.status == 0, "\(upload.output)")
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"])
            #expect(archived.status == 0, "\(archived.output)")
            try await CatalogDatabase.withClient(harness.database.url, logger: logger) { client in try await body(harness, client) }
        }
    }

    static func task(_ client: PostgresClient, _ name: MaintenanceTaskName) async throws -> MaintenanceTaskRecord {
        try #require(try await MaintenanceCatalog(client: client, logger: logger).tasks().first { $0.name == name })
    }

    static func runner(_ harness: PipelineHarness, lease: Duration = .seconds(30), workDirectory: String? = nil,
                       before: (@Sendable (MaintenanceTaskName) async throws -> Void)? = nil) -> MaintenanceRunner {
        var settings = MaintenanceSettings(lease: lease, workDirectory: workDirectory ?? harness.work.path + "/maintenance", concurrency: 2)
        settings.beforeEachTask = before
        return MaintenanceRunner(archive: harness.archive, settings: settings)
    }

    @Test("two workers racing for a due task: it runs exactly once; a task running three times longer than its lease keeps it")
    func raceAndRenewal() async throws {
        try await Self.withArchived { harness, client in
            let catalog = MaintenanceCatalog(client: client, logger: Self.logger)
            try await catalog.update(.verifySample, everySeconds: 3600, enabled: true, parameters: try MaintenanceParameters.checked(.verifySample, percent: 100, sourceLabel: nil))
            try await catalog.requestRun(.verifySample)
            let runs = Mutex<[String]>([])
            let slow: @Sendable (String) -> @Sendable (MaintenanceTaskName) async throws -> Void = { worker in
                { name in
                    runs.withLock { $0.append("\(worker):\(name.rawValue)") }
                    // Three leases long: the renewal must keep it, and the other worker must not get it meanwhile.
                    try await Task.sleep(for: .seconds(18))
                }
            }
            // Leases of 6 s, renewed every 2 s: 1 s and then 3 s leases were lost on a loaded CI machine (a renewal
            // that waited longer than the lease's remaining two thirds), and the task then ran again, as a lost
            // lease allows.
            let first = Self.runner(harness, lease: .seconds(6), before: slow("a"))
            let second = Self.runner(harness, lease: .seconds(6), before: slow("b"))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await first.runDue(workerID: UUID(), client: client, logger: Self.logger) }
                group.addTask { await second.runDue(workerID: UUID(), client: client, logger: Self.logger) }
                // A third worker asks again while the lease has been renewed twice.
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(13_200))
                    await Self.runner(harness, lease: .seconds(6), before: slow("c")).runDue(workerID: UUID(), client: client, logger: Self.logger)
                }
            }
            let ran = runs.withLock { $0 }
            #expect(ran.count == 1 && ran.allSatisfy { $0.hasSuffix(":verify-sample") }, "exactly one run: \(ran)")
            let task = try await Self.task(client, .verifySample)
            #expect(task.lastOutcome == "ok", "\(task.lastError ?? "")")
            let result = try #require(task.lastResult)
            #expect(result.hasPrefix("checked 2 of 2 archive objects (100 %): 2 read back and matched"), "\(result)")
            #expect(!task.running && !task.runRequested)
            #expect(task.nextRunAt > Date().addingTimeInterval(3500), "the next run is an interval later: \(task.nextRunAt)")
            let verified = try await harness.scalar("SELECT count(*) FROM archive_verifications WHERE outcome = 'ok'", as: Int64.self)
            #expect(verified == 2)
        }
    }

    @Test("a worker killed mid-task: its claim runs out and another worker takes the task over; its late result is refused. A failing task records its error and its next run")
    func takeoverAndFailure() async throws {
        try await Self.withArchived { harness, client in
            let catalog = MaintenanceCatalog(client: client, logger: Self.logger)
            try await catalog.requestRun(.exportCatalog)
            // The "killed" worker: claims, then never renews nor finishes.
            let dead = UUID()
            let claimed = try #require(try await catalog.claimDue(workerID: dead, lease: .seconds(1)))
            #expect(claimed.name == .exportCatalog)
            let ranBy = Mutex<[MaintenanceTaskName]>([])
            let survivor = Self.runner(harness) { name in ranBy.withLock { $0.append(name) } }
            await survivor.runDue(workerID: UUID(), client: client, logger: Self.logger)
            #expect(ranBy.withLock { $0 }.isEmpty, "not while the dead worker's lease lasts")
            try await Task.sleep(for: .milliseconds(1_300))
            await survivor.runDue(workerID: UUID(), client: client, logger: Self.logger)
            #expect(ranBy.withLock { $0 } == [.exportCatalog])
            let export = try await Self.task(client, .exportCatalog)
            #expect(export.lastOutcome == "ok" && export.lastResult?.contains("rows to catalog/catalog.jsonl.gz") == true, "\(export)")
            #expect(try await harness.archive.head("catalog/catalog.jsonl.gz") != nil)
            #expect(try await catalog.finish(claimed, workerID: dead, outcome: .ok("late")) == false, "the dead worker's token is fenced off")
            #expect(try await Self.task(client, .exportCatalog).lastResult != "late")

            // A failing task (its work directory cannot be made): the error and the next run are recorded, the runner goes on.
            try await catalog.requestRun(.exportCatalog)
            await Self.runner(harness, workDirectory: "/dev/null/not-a-directory").runDue(workerID: UUID(), client: client, logger: Self.logger)
            let failed = try await Self.task(client, .exportCatalog)
            #expect(failed.lastOutcome == "failed" && failed.lastError == "cannot make the work directory /dev/null/not-a-directory: Not a directory", "\(failed)")
            let retry = failed.nextRunAt.timeIntervalSinceNow
            #expect(retry > 3_500 && retry < 3_700, "a failed run is tried again within the hour (every 7 days otherwise): \(retry) s")
            #expect(!failed.running && !failed.runRequested)
        }
    }

    @Test("a graceful shutdown mid-task gives the claim back at once: the task is due for another worker, nothing is recorded as its result")
    func shutdownReleases() async throws {
        try await Self.withArchived { harness, client in
            let catalog = MaintenanceCatalog(client: client, logger: Self.logger)
            try await catalog.requestRun(.exportCatalog)
            let (started, began) = AsyncStream<Void>.makeStream()
            let runner = Self.runner(harness) { _ in
                began.yield()
                try await Task.sleep(for: .seconds(60))
            }
            let clock = ContinuousClock.now
            try await testGracefulShutdown { trigger in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await runner.runDue(workerID: UUID(), client: client, logger: Self.logger) }
                    var iterator = started.makeAsyncIterator()
                    _ = await iterator.next()
                    trigger.triggerGracefulShutdown()
                    await group.waitForAll()
                }
            }
            #expect(ContinuousClock.now - clock < .seconds(30), "the task was cut short, not waited for")
            let task = try await Self.task(client, .exportCatalog)
            #expect(!task.running && task.runRequested && task.lastFinishedAt == nil && task.lastOutcome == nil, "\(task)")
            #expect(task.nextRunAt <= Date(), "due again at once")
            let ran = Mutex<Int>(0)
            await Self.runner(harness) { _ in ran.withLock { $0 += 1 } }.runDue(workerID: UUID(), client: client, logger: Self.logger)
            let again = try await Self.task(client, .exportCatalog)
            #expect(ran.withLock { $0 } == 1 && again.lastOutcome == "ok", "another worker takes it at once: \(again)")
        }
    }

    @Test("the archiver runs due tasks between batches: refresh-restore-status at once, a queued verify-sample (uploader maintenance run); its notice lines land in worker_logs")
    func archiverRunsDueTasks() async throws {
        try await Self.withArchived { harness, client in
            // The first archiver run already ran the seeded refresh-restore-status (due at once); now a request to refresh.
            #expect(try await Self.task(client, .refreshRestoreStatus).lastOutcome == "ok")
            let key = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE archive_key IS NOT NULL AND bundle_id IS NULL LIMIT 1", as: String.self))
            _ = try await harness.archive.requestRestore(key, days: 3, tier: .bulk)
            try await harness.execute("""
                INSERT INTO restore_requests (archive_key, tier, days, expected_ready_at) VALUES ('\(key)', 'Bulk', 3, now() + interval '2 days'),
                    ('files/missing-object', 'Bulk', 3, now() + interval '2 days')
                """)
            let queued = try await Program.run("uploader", ["maintenance", "run", "refresh-restore-status"], environment: harness.environment)
            #expect(queued.status == 0 && queued.output.contains("refresh-restore-status queued"), "\(queued.output)")
            let badName = try await Program.run("uploader", ["maintenance", "run", "rm -rf"], environment: harness.environment)
            #expect(badName.status == 2 && badName.output.contains("no maintenance task is named 'rm -rf'"), "\(badName.output)")
            _ = try await Program.run("uploader", ["maintenance", "run", "verify-sample"], environment: harness.environment)

            let archived = try await harness.archiveOnce()
            #expect(archived.status == 0, "\(archived.output)")
            #expect(archived.output.contains("maintenance task done"), "\(archived.output)")
            let refresh = try await Self.task(client, .refreshRestoreStatus)
            #expect(refresh.lastResult == "asked the archive about 2 restore requests: 1 ready, 1 still pending, 0 expired since the last look.", "\(refresh)")
            #expect(try await harness.scalar("SELECT state FROM restore_requests WHERE archive_key = '\(key)'", as: String.self) == "ready")
            let verify = try await Self.task(client, .verifySample)
            #expect(verify.lastOutcome == "ok" && verify.lastResult?.hasPrefix("checked 1 of 2 archive objects (5 %)") == true, "\(verify)")

            let listed = try await Program.run("uploader", ["maintenance", "list"], environment: harness.environment)
            #expect(listed.status == 0 && listed.output.contains("verify-sample: checked 1 of 2"), "\(listed.output)")
            let logged = try await harness.scalar("""
                SELECT count(*) FROM worker_logs WHERE program = 'archiver' AND message = 'maintenance task done' AND metadata->>'maintenance.task' = 'verify-sample'
                """, as: Int64.self)
            #expect(logged == 1, "the archiver's notice lines are kept in the catalog")
        }
    }
}
