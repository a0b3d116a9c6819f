import Catalog
import CoreMetrics
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Tracing

/// How a worker polls, leases and shuts down.
public struct PollingWorkerConfiguration: Sendable {
    public var step: WorkStep
    /// Rows claimed in one statement and handed to the handler together.
    public var batchSize: Int
    /// How long a claim lasts without renewal; renewed every `lease / 3` while the job runs.
    public var lease: Duration
    /// Sleep between polls when the queue is empty.
    public var pollInterval: Duration
    /// On SIGTERM: how long in-flight jobs may still run before they are cancelled and released (ECS waits 30 s
    /// before SIGKILL, so the default leaves room for the release itself).
    public var shutdownGrace: Duration
    /// Drain the queue and exit instead of polling forever.
    public var once: Bool
    /// A `--once` run waits for retries due within this time; later ones are left for the next run.
    public var onceRetryWait: Duration
    public var retry: RetryBackoff
    /// While the queue stays busy, housekeeping still runs after a batch once this long has passed since it last
    /// ran: a backlog of hours must not hold up deletes, sweeps, browser restores and the scheduled tasks.
    public var housekeepingEvery: Duration

    public init(
        step: WorkStep, batchSize: Int = 64, lease: Duration = .seconds(30), pollInterval: Duration = .seconds(2),
        shutdownGrace: Duration = .seconds(25), once: Bool = false, onceRetryWait: Duration = .seconds(60),
        retry: RetryBackoff = RetryBackoff(), housekeepingEvery: Duration = .seconds(60)
    ) {
        self.housekeepingEvery = housekeepingEvery
        self.step = step
        self.batchSize = batchSize
        self.lease = lease
        self.pollInterval = pollInterval
        self.shutdownGrace = shutdownGrace
        self.once = once
        self.onceRetryWait = onceRetryWait
        self.retry = retry
    }
}

/// What became of one claimed row.
public enum JobOutcome: Sendable, Hashable {
    /// The handler wrote the row's next state itself (guarded by the lease).
    case completed
    /// The attempt failed; retried with backoff unless `permanent` or out of attempts.
    case failed(String, permanent: Bool)
    /// Not now (another row with the same content is in flight): released without counting an attempt.
    case deferred(Duration)
    /// The lease was lost while working; someone else owns the row now, so nothing more is written.
    case leaseLost
}

/// The part of a worker that knows its step: archive, transcode.
public protocol JobHandler: Sendable {
    /// Works on the claimed rows and says what became of each. Rows it leaves out are released.
    /// When the task is cancelled (shutdown grace over), it should stop promptly; unfinished rows are released.
    func handle(_ jobs: [ClaimedFile], context: JobContext) async -> [Int64: JobOutcome]

    /// Housekeeping between claims (sweeps, deletes, exports). `drained` is true once before a `--once` run
    /// exits and once at shutdown, so work that is rate-limited while busy happens at the end.
    func housekeeping(context: JobContext, drained: Bool) async throws
}

/// What a handler may ask the worker while it runs.
public struct JobContext: Sendable {
    public let workerID: UUID
    public let queue: WorkQueue
    public let client: PostgresClient
    public let logger: Logger
    let leases: LeaseBook

    /// False once the worker learnt that another worker owns the row; the handler must not write it.
    public func stillHolds(_ job: ClaimedFile) -> Bool { leases.holds(job.fileID) }
}

/// The rows this worker currently holds, shared between the job and the heartbeat.
final class LeaseBook: Sendable {
    private let held = Mutex<[Int64: ClaimedFile]>([:])
    private let lost = Mutex<Set<Int64>>([])

    func add(_ jobs: [ClaimedFile]) { held.withLock { for job in jobs { $0[job.fileID] = job } } }
    func remove(_ ids: some Sequence<Int64>) { held.withLock { for id in ids { $0[id] = nil } } }
    var current: [ClaimedFile] { held.withLock { Array($0.values) } }
    func markLost(_ ids: some Sequence<Int64>) {
        let ids = Array(ids)
        lost.withLock { $0.formUnion(ids) }
        held.withLock { for id in ids { $0[id] = nil } }
    }
    func holds(_ id: Int64) -> Bool { !lost.withLock { $0.contains(id) } }
    func forgetLost(_ ids: some Sequence<Int64>) { lost.withLock { $0.subtract(ids) } }
}

/// Exponential backoff with jitter, as River and Oban do: attempt n waits about base × 2^(n-1), capped, and
/// randomised so that rows failing together do not retry together.
public struct RetryBackoff: Sendable, Hashable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .seconds(10), maximum: Duration = .seconds(3600)) {
        self.base = base
        self.maximum = maximum
    }

    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(base.seconds * pow(2, Double(exponent)), maximum.seconds)
        // Between half and the whole ceiling ("equal jitter"): never zero, never above the cap.
        return .milliseconds(Int64((ceiling * (0.5 + 0.5 * random)) * 1000))
    }
}

/// A worker process's main loop as a `Service`: claims batches, keeps their leases alive, hands them to the
/// handler, records outcomes; on graceful shutdown it stops claiming, lets in-flight jobs finish within the
/// grace period, then cancels and releases what is left.
public struct PollingWorker<Handler: JobHandler>: Service {
    public let configuration: PollingWorkerConfiguration
    public let handler: Handler
    public let workerID: UUID
    let client: PostgresClient
    let queue: WorkQueue
    let logger: Logger

    public init(configuration: PollingWorkerConfiguration, handler: Handler, client: PostgresClient, logger: Logger, workerID: UUID = UUID()) {
        self.configuration = configuration
        self.handler = handler
        self.client = client
        self.workerID = workerID
        self.queue = WorkQueue(client: client, logger: logger)
        var logger = logger
        logger[metadataKey: "worker.id"] = "\(workerID)"
        self.logger = logger
    }

    public func run() async throws {
        let host = ProcessInfo.processInfo.hostName
        try await queue.register(workerID: workerID, role: configuration.step.role, host: host, processID: getpid())
        logger.info("worker started", metadata: [
            "worker.role": "\(configuration.step.role.rawValue)", "worker.host": "\(host)",
            "worker.batch_size": "\(configuration.batchSize)", "worker.lease_seconds": "\(configuration.lease.seconds)",
        ])
        let leases = LeaseBook()
        let context = JobContext(workerID: workerID, queue: queue, client: client, logger: logger, leases: leases)
        var stopReason = "stopped"
        do {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await heartbeat(leases: leases) }
                try await pollLoop(context: context, leases: leases)
                group.cancelAll()
            }
            try await handler.housekeeping(context: context, drained: true)
        } catch {
            stopReason = "fatal: \(CatalogDatabase.describe(error))"
            try? await queue.markStopped(workerID: workerID, reason: stopReason)
            throw error
        }
        try await queue.markStopped(workerID: workerID, reason: stopReason)
        logger.info("worker stopped")
    }

    /// Claims until shutdown (or, with `once`, until nothing is left to do).
    func pollLoop(context: JobContext, leases: LeaseBook) async throws {
        var lastHousekeeping = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let abandoned = try await queue.failAbandoned(configuration.step)
            if !abandoned.isEmpty {
                logger.error("files failed for good: their worker died on every attempt", metadata: ["file.ids": "\(abandoned)"])
            }
            let jobs = try await queue.claim(configuration.step, workerID: workerID, limit: configuration.batchSize, lease: configuration.lease)
            if jobs.isEmpty {
                try await handler.housekeeping(context: context, drained: false)
                lastHousekeeping = .now
                if configuration.once {
                    let backlog = try await queue.backlog(configuration.step)
                    let retrySoon = backlog.nextRetry.map { $0.timeIntervalSinceNow <= configuration.onceRetryWait.seconds } ?? false
                    if backlog.runnable == 0 && backlog.held == 0 && !retrySoon {
                        if backlog.waiting > 0 {
                            logger.warning("queue drained; some files wait for a retry later", metadata: [
                                "files.waiting": "\(backlog.waiting)", "retry.next": "\(backlog.nextRetry.map { "\($0)" } ?? "-")",
                            ])
                        }
                        return
                    }
                }
                try? await Task.sleep(for: configuration.pollInterval)
                continue
            }
            try await runBatch(jobs, context: context, leases: leases)
            if ContinuousClock.now - lastHousekeeping >= configuration.housekeepingEvery {
                try await handler.housekeeping(context: context, drained: false)
                lastHousekeeping = .now
            }
        }
    }

    /// Runs one batch as a span (`transcode batch`, `archive batch`) and counts its outcomes in
    /// `backup_jobs_total{step,outcome}` and its duration in `backup_batch_duration_seconds{step}`; both reach an
    /// OTLP collector when one is configured (Telemetry), and are no-ops otherwise.
    func runBatch(_ jobs: [ClaimedFile], context: JobContext, leases: LeaseBook) async throws {
        let step = configuration.step.role.rawValue
        let started = ContinuousClock.now
        try await withSpan("\(step) batch", ofKind: .consumer) { span in
            span.attributes["backup.step"] = step
            span.attributes["backup.batch.size"] = jobs.count
            span.attributes["backup.worker.id"] = workerID.uuidString
            let counts = try await runBatchJobs(jobs, context: context, leases: leases)
            for (outcome, count) in counts {
                span.attributes["backup.batch.\(outcome)"] = count
                Counter(label: "backup_jobs_total", dimensions: [("step", step), ("outcome", outcome)]).increment(by: count)
            }
            if counts["failed", default: 0] > 0 { span.setStatus(SpanStatus(code: .error, message: "some jobs failed")) }
        }
        CoreMetrics.Timer(label: "backup_batch_duration_seconds", dimensions: [("step", step)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64((ContinuousClock.now - started).seconds * 1e9))
    }

    /// Runs one batch; on graceful shutdown the batch gets `shutdownGrace` to finish before it is cancelled.
    private func runBatchJobs(_ jobs: [ClaimedFile], context: JobContext, leases: LeaseBook) async throws -> [String: Int] {
        leases.add(jobs)
        defer {
            leases.remove(jobs.map(\.fileID))
            leases.forgetLost(jobs.map(\.fileID))
        }
        let started = ContinuousClock.now
        let handler = self.handler
        let grace = configuration.shutdownGrace
        let work = Task { await handler.handle(jobs, context: context) }
        let outcomes = await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await work.value
            } onCancel: {
                work.cancel()
            }
        } onGracefulShutdown: {
            Task {
                try? await Task.sleep(for: grace)
                work.cancel()
            }
        }
        // Cut off by shutdown (or cancellation): whatever did not complete goes back to the queue untouched,
        // however the interrupted work reported it.
        let cutOff = work.isCancelled
        var counts: [String: Int] = [:]
        for job in jobs {
            // A completed row is no longer leased, so the heartbeat may have marked it "lost": completion wins.
            var outcome = outcomes[job.fileID] == .completed || leases.holds(job.fileID) ? outcomes[job.fileID] : .leaseLost
            if cutOff, case .failed = outcome { outcome = nil }
            switch outcome {
            case .completed:
                counts["completed", default: 0] += 1
            case .failed(let message, let permanent):
                counts["failed", default: 0] += 1
                let delay = configuration.retry.delay(afterAttempt: job.attempt)
                let final = permanent || job.attempt >= job.maxAttempts
                logger.log(level: final ? .error : .warning, "job failed", metadata: [
                    "file.id": "\(job.fileID)", "job.attempt": "\(job.attempt)", "job.max_attempts": "\(job.maxAttempts)",
                    "job.final": "\(final)", "error": "\(message)",
                ])
                _ = try await queue.fail(job, workerID: workerID, error: message, retryAfter: delay, permanent: permanent)
            case .deferred(let delay):
                counts["deferred", default: 0] += 1
                _ = try await queue.release(job, workerID: workerID, runAfter: delay)
            case .leaseLost:
                counts["lease_lost", default: 0] += 1
                logger.warning("lease lost; another worker owns the file now", metadata: ["file.id": "\(job.fileID)"])
            case nil:
                counts["released", default: 0] += 1
                _ = try await queue.release(job, workerID: workerID)
            }
        }
        logger.info("batch done", metadata: [
            "batch.size": "\(jobs.count)", "batch.outcomes": "\(counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
        ])
        return counts
    }

    /// Every lease/3: the worker's heartbeat and the renewal of every lease it holds. A renewal that finds a row
    /// gone marks it lost, so the handler stops writing it.
    func heartbeat(leases: LeaseBook) async throws {
        let interval = Duration.milliseconds(Int64(configuration.lease.seconds * 1000 / 3))
        var failures = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            do {
                try await queue.heartbeat(workerID: workerID)
                let held = leases.current
                let lost = try await queue.renewAll(held, workerID: workerID, lease: configuration.lease).lost(of: held)
                if !lost.isEmpty { leases.markLost(lost) }
                failures = 0
            } catch {
                // A database blip must not kill the worker; the leases simply run out if it lasts.
                failures += 1
                logger.warning("heartbeat failed", metadata: ["error": "\(CatalogDatabase.describe(error))", "heartbeat.failures": "\(failures)"])
            }
        }
    }
}
