import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// One log line as `worker_logs` keeps it (its secrets already redacted).
public struct WorkerLogEntry: Sendable, Hashable {
    public var at: Date
    public var program: String
    public var worker: String
    public var level: Logger.Level
    public var message: String
    /// The metadata as a JSON object (text).
    public var metadataJSON: String

    public init(at: Date, program: String, worker: String, level: Logger.Level, message: String, metadataJSON: String) {
        self.at = at
        self.program = program
        self.worker = worker
        self.level = level
        self.message = message
        self.metadataJSON = metadataJSON
    }
}

/// `worker_logs`: the recent notice-and-above lines of the workers and the status server, for the admin page.
public struct WorkerLogCatalog: Sendable {
    /// What is kept: the newest this many lines, none older than `keptDays`.
    public static let keptLines = 5_000
    public static let keptDays = 14
    /// The levels `worker_logs` takes, lowest first.
    public static let levels: [Logger.Level] = [.notice, .warning, .error, .critical]

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Writes a batch in one statement.
    public func insert(_ entries: [WorkerLogEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await CatalogError.wrapping("write the worker logs") {
            _ = try await client.catalogQuery("""
                INSERT INTO worker_logs (at, program, worker, level, message, metadata)
                SELECT at, program, worker, level, message, metadata::jsonb
                FROM unnest(\(entries.map(\.at))::timestamptz[], \(entries.map(\.program))::text[], \(entries.map(\.worker))::text[],
                            \(entries.map(\.level.rawValue))::text[], \(entries.map(\.message))::text[], \(entries.map(\.metadataJSON))::text[])
                     AS e(at, program, worker, level, message, metadata)
                """, logger: logger)
        }
    }

    /// The newest `limit` lines at `minimum` level or above, newest first.
    public func newest(limit: Int = 200, minimum: Logger.Level = .notice) async throws -> [WorkerLogEntry] {
        let levels = Self.levels.filter { $0 >= minimum }.map(\.rawValue)
        return try await CatalogError.wrapping("read the worker logs") {
            var result: [WorkerLogEntry] = []
            for try await row in try await client.catalogQuery("""
                SELECT at, program, worker, level, message, metadata::text FROM worker_logs
                WHERE level = ANY(\(levels)::text[]) ORDER BY at DESC, id DESC LIMIT \(limit)
                """, logger: logger).decode((Date, String, String, String, String, String).self) {
                result.append(WorkerLogEntry(
                    at: row.0, program: row.1, worker: row.2, level: Logger.Level(rawValue: row.3) ?? .notice, message: row.4, metadataJSON: row.5))
            }
            return result
        }
    }

    /// Keeps the newest `keptLines`, none older than `keptDays`; returns how many went.
    @discardableResult
    public func prune(keepLines: Int = keptLines, keepDays: Int = keptDays) async throws -> Int {
        try await CatalogError.wrapping("prune the worker logs") {
            var removed = 0
            for try await count in try await client.catalogQuery("""
                WITH gone AS (
                    DELETE FROM worker_logs WHERE at < now() - make_interval(days => \(keepDays)::int)
                       OR id < coalesce((SELECT id FROM worker_logs ORDER BY id DESC OFFSET \(max(keepLines, 1) - 1) LIMIT 1), 0)
                    RETURNING 1)
                SELECT count(*) FROM gone
                """, logger: logger).decode(Int64.self) { removed = Int(count) }
            return removed
        }
    }
}
