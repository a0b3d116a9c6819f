import Catalog
import Foundation
import JobQueue
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import ServiceLifecycleTestKit
import SystemIO
import Testing
import TestSupport

/// The generic worker in-process, with a small handler instead of the archive or transcode step, against a real
/// PostgreSQL: graceful shutdown is triggered with ServiceLifecycleTestKit instead of a signal to a child process.
@Suite("PollingWorker in-process: graceful shutdown, grace period, drains")
struct PollingWorkerTests {
    let logger = TestEnvironment.logger

    /// A handler that reports each batch it starts, then either answers after `delay` or waits until cancelled.
    struct ScriptedHandler: JobHandler {
        let started: AsyncStream<[Int64]>.Continuation
        /// nil: wait until cancelled (the shutdown grace runs out).
        let delay: Duration?
        let outcome: JobOutcome
        let housekeepingRuns = LockedBox<[Bool]>([])

        func handle(_ jobs: [ClaimedFile], context: JobContext) async -> [Int64: JobOutcome] {
            started.yield(jobs.map(\.fileID))
            do {
                try await Task.sleep(for: delay ?? .seconds(3600))
            } catch {
                // Cancelled at the end of the grace period: report a failure, which the worker must not record.
                return Dictionary(uniqueKeysWithValues: jobs.map { ($0.fileID, .failed("cancelled", permanent: false)) })
            }
            return Dictionary(uniqueKeysWithValues: jobs.map { ($0.fileID, outcome) })
        }

        func housekeeping(context: JobContext, drained: Bool) async throws {
            housekeepingRuns.withLock { $0.append(drained) }
        }
    }

    /// A migrated database with `count` staged regular files for the archive step.
    func withStagedRows(_ count: Int, _ body: (PostgresClient) async throws -> Void) async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            _ = try await client.query("INSERT INTO sources (label) VALUES ('worker test')", logger: logger).collect()
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, max_attempts)
                SELECT 1, 'f' || n, 'regular/' || n, 'regular', n, lpad(to_hex(n), 64, '0'), 'staging', 'k' || n, 3
                FROM generate_series(1, \(count)) AS n
                """, logger: logger).collect()
            try await body(client)
        }
    }

    func states(_ client: PostgresClient) async throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for try await (state, count) in try await client.query(
            "SELECT state, count(*)::bigint FROM objectstoragefiles GROUP BY state", logger: logger
        ).decode((String, Int64).self) {
            result[state] = count
        }
        return result
    }

    func scalar<T: PostgresDecodable & Sendable>(_ client: PostgresClient, _ query: PostgresQuery, as type: T.Type) async throws -> T? {
        for try await value in try await client.query(query, logger: logger).decode(T.self) { return value }
        return nil
    }

    @Test("shutdown with a batch in flight: the batch gets the grace period, is cancelled, its rows go back untouched, attempts not counted")
    func shutdownCutsOffAfterGrace() async throws {
        try await withStagedRows(3) { client in
            let (started, startedContinuation) = AsyncStream.makeStream(of: [Int64].self)
            let handler = ScriptedHandler(started: startedContinuation, delay: nil, outcome: .completed)
            let worker = PollingWorker(
                configuration: PollingWorkerConfiguration(step: .archive, batchSize: 10, lease: .seconds(30), pollInterval: .milliseconds(50),
                                                          shutdownGrace: .milliseconds(500)),
                handler: handler, client: client, logger: logger)
            let elapsed = try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await worker.run() }
                    var iterator = started.makeAsyncIterator()
                    let batch = await iterator.next()
                    #expect(batch?.count == 3)
                    #expect(try await states(client) == ["archiving": 3])
                    let signalled = ContinuousClock.now
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                    return ContinuousClock.now - signalled
                }
            }
            #expect(elapsed >= .milliseconds(450), "the batch had its grace period")
            #expect(elapsed < .seconds(10), "and no more than about that")
            #expect(try await states(client) == ["staged": 3], "a cut-off batch is handed back, whatever it reported")
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM objectstoragefiles WHERE attempts <> 0", as: Int64.self) == 0)
            #expect(try await scalar(client, "SELECT stop_reason FROM workers", as: String.self) == "stopped")
            #expect(handler.housekeepingRuns.withLock { $0 } .last == true, "housekeeping runs once more at shutdown")
        }
    }

    @Test("shutdown while a batch finishes within the grace period: its outcomes are recorded")
    func shutdownLetsBatchFinish() async throws {
        try await withStagedRows(2) { client in
            let (started, startedContinuation) = AsyncStream.makeStream(of: [Int64].self)
            let handler = ScriptedHandler(started: startedContinuation, delay: .milliseconds(300), outcome: .failed("bad bytes", permanent: true))
            let worker = PollingWorker(
                configuration: PollingWorkerConfiguration(step: .archive, batchSize: 10, pollInterval: .milliseconds(50), shutdownGrace: .seconds(20)),
                handler: handler, client: client, logger: logger)
            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await worker.run() }
                    var iterator = started.makeAsyncIterator()
                    _ = await iterator.next()
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                }
            }
            #expect(try await states(client) == ["failed": 2])
            #expect(try await scalar(client, "SELECT min(error) FROM objectstoragefiles", as: String.self) == "bad bytes")
        }
    }

    @Test("--once: retries wait with backoff, the run drains the queue and returns by itself; no claim is left")
    func onceDrains() async throws {
        try await withStagedRows(5) { client in
            let (_, startedContinuation) = AsyncStream.makeStream(of: [Int64].self)
            let handler = ScriptedHandler(started: startedContinuation, delay: .zero, outcome: .failed("try again", permanent: false))
            let worker = PollingWorker(
                configuration: PollingWorkerConfiguration(
                    step: .archive, batchSize: 2, pollInterval: .milliseconds(20), once: true, onceRetryWait: .seconds(5),
                    retry: RetryBackoff(base: .milliseconds(100), maximum: .milliseconds(200))),
                handler: handler, client: client, logger: logger)
            try await worker.run()
            // Three attempts each (max_attempts), then failed for good; nothing held, nothing waiting.
            #expect(try await states(client) == ["failed": 5])
            #expect(try await scalar(client, "SELECT min(attempts)::bigint FROM objectstoragefiles", as: Int64.self) == 3)
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM objectstoragefiles WHERE lease_owner IS NOT NULL", as: Int64.self) == 0)
            #expect(handler.housekeepingRuns.withLock { $0 }.contains(true), "housekeeping ran once drained")
        }
    }

    /// Fails each row for good after a moment, and counts at each housekeeping how many rows were still waiting.
    struct BusyQueueHandler: JobHandler {
        let waitingAtHousekeeping = LockedBox<[Int64]>([])

        func handle(_ jobs: [ClaimedFile], context: JobContext) async -> [Int64: JobOutcome] {
            try? await Task.sleep(for: .milliseconds(30))
            return Dictionary(uniqueKeysWithValues: jobs.map { ($0.fileID, .failed("done with it", permanent: true)) })
        }

        func housekeeping(context: JobContext, drained: Bool) async throws {
            var waiting: Int64 = 0
            for try await count in try await context.client.query(
                "SELECT count(*)::bigint FROM objectstoragefiles WHERE state = 'staged'", logger: context.logger
            ).decode(Int64.self) {
                waiting = count
            }
            waitingAtHousekeeping.withLock { $0.append(waiting) }
        }
    }

    @Test("a queue that never empties does not starve housekeeping: it runs between batches once housekeepingEvery has passed")
    func housekeepingWhileBusy() async throws {
        try await withStagedRows(60) { client in
            let handler = BusyQueueHandler()
            let worker = PollingWorker(
                configuration: PollingWorkerConfiguration(
                    step: .archive, batchSize: 1, pollInterval: .milliseconds(20), once: true, housekeepingEvery: .milliseconds(300)),
                handler: handler, client: client, logger: logger)
            try await worker.run()
            #expect(try await states(client) == ["failed": 60])
            let waiting = handler.waitingAtHousekeeping.withLock { $0 }
            // 60 batches of at least 30 ms: at least 1.8 s of work, so several housekeeping runs fall while rows wait.
            #expect(waiting.filter { $0 > 0 }.count >= 2, "housekeeping ran while the queue was busy: rows waiting at each run \(waiting)")
            #expect(waiting.last == 0, "and once drained")
        }
    }
}
