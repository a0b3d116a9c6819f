import ArchiveStep
import Catalog
import Foundation
import JobQueue
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// How the archivers run the scheduled maintenance tasks.
public struct MaintenanceSettings: Sendable {
    /// How long a claim lasts without renewal; renewed every third of it while the task runs.
    public var lease: Duration
    /// Where the audit downloads objects to check and the export writes its file (the archiver's work directory).
    public var workDirectory: String
    /// Archive objects checked at once by verify-sample and audit.
    public var concurrency: Int
    /// `worker_logs` is pruned at most this often.
    public var logPruneInterval: Duration
    /// For tests only: runs before each task's work, while its lease is held (a slow task, a task that dies).
    public var beforeEachTask: (@Sendable (MaintenanceTaskName) async throws -> Void)?

    public init(lease: Duration = .seconds(300), workDirectory: String, concurrency: Int = 4, logPruneInterval: Duration = .seconds(600)) {
        self.lease = lease
        self.workDirectory = workDirectory
        self.concurrency = concurrency
        self.logPruneInterval = logPruneInterval
    }
}

/// Runs the due maintenance tasks between the archiver's batches, one at a time, each under a lease that is renewed
/// while it runs, and records each run's result; and keeps `worker_logs` bounded. Never throws: a failed task
/// records its error and its next run, and archiving goes on.
public final class MaintenanceRunner: BetweenBatchesWork, Sendable {
    let archive: any ObjectStore
    let settings: MaintenanceSettings
    private let lastPrune = Mutex<ContinuousClock.Instant?>(nil)

    public init(archive: any ObjectStore, settings: MaintenanceSettings) {
        self.archive = archive
        self.settings = settings
    }

    public func runDue(context: JobContext) async {
        await runDue(workerID: context.workerID, client: context.client, logger: context.logger)
    }

    /// Claims and runs due tasks until none is left; not while the process is shutting down.
    public func runDue(workerID: UUID, client: PostgresClient, logger: Logger) async {
        await pruneLogsIfDue(client: client, logger: logger)
        let catalog = MaintenanceCatalog(client: client, logger: logger)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let claimed: ClaimedMaintenanceTask?
            do {
                claimed = try await catalog.claimDue(workerID: workerID, lease: settings.lease)
            } catch {
                logger.warning("maintenance tasks not claimed; tried again after the next batch", metadata: ["error": "\(CatalogDatabase.describe(error))"])
                return
            }
            guard let task = claimed else { return }
            await run(task, catalog: catalog, workerID: workerID, client: client, logger: logger)
        }
    }

    private enum Ending: Sendable {
        case finished(MaintenanceOutcome)
        case leaseLost
    }

    /// Runs one claimed task beside its lease renewal; whichever ends first ends the other.
    func run(_ task: ClaimedMaintenanceTask, catalog: MaintenanceCatalog, workerID: UUID, client: PostgresClient, logger: Logger) async {
        var taskLogger = logger
        taskLogger[metadataKey: "maintenance.task"] = "\(task.name.rawValue)"
        let logger = taskLogger
        logger.notice("maintenance task started", metadata: ["maintenance.parameters": "\(task.parameters.json)"])
        let started = ContinuousClock.now
        let settings = self.settings
        let work = MaintenanceTasks(archive: archive, client: client, settings: settings, logger: logger)
        let ending: Ending? = await withTaskGroup(of: Ending?.self) { group in
            group.addTask {
                do {
                    let outcome = try await cancelWhenGracefulShutdown {
                        try await settings.beforeEachTask?(task.name)
                        return try await work.perform(task)
                    }
                    // A run that failed because shutdown cut it short is not a verdict: another worker runs it again.
                    if Task.isShuttingDownGracefully, case .failed = outcome { return nil }
                    return .finished(outcome)
                } catch {
                    // Cut short by shutdown or a lost lease: nothing to record (the claim is given back or gone).
                    if Task.isCancelled || Task.isShuttingDownGracefully { return nil }
                    return .finished(.failed(result: nil, error: MaintenanceTasks.describe(error)))
                }
            }
            group.addTask {
                await Self.renewUntilLost(task, catalog: catalog, workerID: workerID, lease: settings.lease, logger: logger)
                return Task.isCancelled ? nil : .leaseLost
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let seconds = Format.duration((ContinuousClock.now - started).seconds)
        switch ending {
        case .finished(let outcome):
            do {
                guard try await catalog.finish(task, workerID: workerID, outcome: outcome) else {
                    logger.warning("maintenance task finished after its lease was taken over; its result is not recorded")
                    return
                }
            } catch {
                logger.warning("maintenance task's result not recorded", metadata: ["error": "\(CatalogDatabase.describe(error))"])
                return
            }
            switch outcome {
            case .ok(let result): logger.notice("maintenance task done", metadata: ["maintenance.result": "\(result)", "duration": "\(seconds)"])
            case .failed(_, let error): logger.error("maintenance task failed", metadata: ["error": "\(error)", "duration": "\(seconds)"])
            }
        case .leaseLost:
            logger.warning("maintenance task stopped: its lease was lost (another worker may run it now)")
        case nil:
            try? await catalog.release(task, workerID: workerID)
            logger.notice("maintenance task interrupted by shutdown; due again for another worker")
        }
    }

    /// Renews every third of the lease; returns when the lease is lost (or the task is cancelled). A failed renewal
    /// is tried again: the lease simply runs out if the database stays away.
    static func renewUntilLost(_ task: ClaimedMaintenanceTask, catalog: MaintenanceCatalog, workerID: UUID, lease: Duration, logger: Logger) async {
        let interval = lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            do {
                if try await !catalog.renew(task, workerID: workerID, lease: lease) { return }
            } catch {
                logger.warning("maintenance task's lease not renewed", metadata: ["error": "\(CatalogDatabase.describe(error))"])
            }
        }
    }

    /// Keeps `worker_logs` to its newest lines, at most every `logPruneInterval`.
    func pruneLogsIfDue(client: PostgresClient, logger: Logger) async {
        let now = ContinuousClock.now
        let due = lastPrune.withLock { last in
            guard last.map({ now - $0 >= settings.logPruneInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        do {
            try await WorkerLogCatalog(client: client, logger: logger).prune()
        } catch {
            logger.warning("worker logs not pruned; tried again later", metadata: ["error": "\(CatalogDatabase.describe(error))"])
        }
    }
}
