import Foundation
import Logging
import PipelineCore
import PostgresNIO
import Synchronization

/// The bounded queue between `CatalogLogHandler` and `WorkerLogWriter`: the handler only appends under a lock, so
/// logging never waits for the database; a full queue drops the line and counts it, and so does a batch the
/// database refused. The writer says how many went missing, in one line, once it can write again.
public final class WorkerLogQueue: Sendable {
    struct State {
        var entries: [WorkerLogEntry] = []
        var dropped = 0
    }

    public let program: String
    public let worker: String
    public let capacity: Int
    let redaction: LogRedaction
    private let state = Mutex(State())

    /// `program` is the role (`archiver`, `status-server`, …); `worker` says which copy (host and process id).
    public init(program: String, worker: String, redaction: LogRedaction, capacity: Int = 2_000) {
        self.program = program
        self.worker = worker
        self.redaction = redaction
        self.capacity = max(1, capacity)
    }

    /// The handler's side: never blocks on anything but the lock.
    func offer(_ entry: WorkerLogEntry) {
        state.withLock { state in
            if state.entries.count >= capacity { state.dropped += 1 } else { state.entries.append(entry) }
        }
    }

    /// The writer's side: the oldest `limit` entries.
    func take(limit: Int) -> [WorkerLogEntry] {
        state.withLock { state in
            let batch = Array(state.entries.prefix(limit))
            state.entries.removeFirst(batch.count)
            return batch
        }
    }

    func noteDropped(_ count: Int) { state.withLock { $0.dropped += count } }

    func takeDropped() -> Int { state.withLock { state in defer { state.dropped = 0 }; return state.dropped } }

    public var pending: Int { state.withLock { $0.entries.count } }
}

/// A swift-log handler that hands lines of level notice and above, redacted, to a `WorkerLogQueue`.
public struct CatalogLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let queue: WorkerLogQueue

    public init(queue: WorkerLogQueue) { self.queue = queue }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= .notice else { return }
        let redaction = queue.redaction
        var fields: [(String, String)] = []
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields.append((key, redaction.redact(value: Self.text(value), key: key)))
        }
        if let error = event.error { fields.append(("error", redaction.redact("\(error)"))) }
        let json = "{" + fields.sorted { $0.0 < $1.0 }.map { JSONText.quoted($0.0) + ": " + JSONText.quoted($0.1) }.joined(separator: ", ") + "}"
        queue.offer(WorkerLogEntry(
            at: Date(), program: queue.program, worker: queue.worker, level: event.level, message: redaction.redact(event.message.description),
            metadataJSON: json))
    }

    static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): "[" + values.map(text).joined(separator: ", ") + "]"
        case .dictionary(let values): "{" + values.sorted { $0.key < $1.key }.map { "\($0.key): \(text($0.value))" }.joined(separator: ", ") + "}"
        }
    }
}

/// Drains a `WorkerLogQueue` into `worker_logs` in batches, every `interval`, until cancelled.
public struct WorkerLogWriter: Sendable {
    let queue: WorkerLogQueue
    let catalog: WorkerLogCatalog
    /// Where the writer reports lines it had to drop (it goes through the queue like any line).
    let logger: Logger
    let interval: Duration
    let batchSize: Int

    /// `databaseLogger` is for the writer's own queries: give it a logger that does not feed the queue.
    public init(queue: WorkerLogQueue, client: PostgresClient, databaseLogger: Logger, reportTo logger: Logger, interval: Duration = .seconds(1), batchSize: Int = 200) {
        self.queue = queue
        self.catalog = WorkerLogCatalog(client: client, logger: databaseLogger)
        self.logger = logger
        self.interval = interval
        self.batchSize = max(1, batchSize)
    }

    /// Writes every `interval` until the task is cancelled. The caller calls `flush` after, outside the cancelled task.
    public func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            // A cancelled task's queries fail: the lines are left for the caller's last flush.
            if Task.isCancelled { return }
            await flush()
        }
    }

    /// Writes what is queued now. A batch the database refuses is dropped and counted, never retried: a line may be
    /// lost in an outage, the worker never waits for it.
    public func flush() async {
        var wrote = false
        while true {
            let batch = queue.take(limit: batchSize)
            if batch.isEmpty { break }
            do {
                try await catalog.insert(batch)
                wrote = true
            } catch {
                queue.noteDropped(batch.count)
                return
            }
            if batch.count < batchSize { break }
        }
        // Said only once a write went through: during an outage the report itself would be dropped, again and again.
        guard wrote else { return }
        let dropped = queue.takeDropped()
        if dropped > 0 {
            logger.warning("log lines not kept in the catalog (the queue was full or the database did not answer)", metadata: ["logs.dropped": "\(dropped)"])
        }
    }
}
