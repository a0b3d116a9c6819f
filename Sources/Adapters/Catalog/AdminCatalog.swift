import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What the family admin page shows besides the users: the workers, the files that failed, the alerts.
public struct AdminOverview: Sendable {
    public struct Worker: Sendable {
        public let role: String
        public let host: String
        public let startedAt: Date
        public let heartbeatAt: Date
        public let stoppedAt: Date?
        public let stopReason: String?
        /// Files it holds a lease on now, and one of their paths.
        public let leased: Int
        public let currentPath: String?
    }

    public struct FailedFile: Sendable {
        public let id: Int64
        public let source: String
        public let path: String
        public let state: String
        public let error: String?
        public let updatedAt: Date
    }

    public struct Alert: Sendable {
        public let kind: String
        public let message: String
        public let createdAt: Date
        public let deliveredAt: Date?
        public let lastError: String?
    }

    public let workers: [Worker]
    public let failed: [FailedFile]
    public let failedTotal: Int
    public let alerts: [Alert]
}

public struct AdminCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Workers seen in the last day (and every running one), the newest failed and unreadable files, the newest alerts.
    public func overview(limit: Int = 100) async throws -> AdminOverview {
        try await CatalogError.wrapping("read the admin overview") {
            var workers: [AdminOverview.Worker] = []
            for try await (role, host, started, heartbeat, stopped, reason, leased, path) in try await client.catalogQuery("""
                SELECT w.role, w.host, w.started_at, w.heartbeat_at, w.stopped_at, w.stop_reason,
                       (SELECT count(*) FROM objectstoragefiles f WHERE f.lease_owner = w.id),
                       (SELECT min(f.path) FROM objectstoragefiles f WHERE f.lease_owner = w.id)
                FROM workers w WHERE w.stopped_at IS NULL OR w.heartbeat_at > now() - interval '1 day'
                ORDER BY w.stopped_at IS NOT NULL, w.role, w.heartbeat_at DESC LIMIT \(limit)
                """, logger: logger).decode((String, String, Date, Date, Date?, String?, Int64, String?).self) {
                workers.append(.init(role: role, host: host, startedAt: started, heartbeatAt: heartbeat, stoppedAt: stopped, stopReason: reason,
                                     leased: Int(leased), currentPath: path))
            }
            var failed: [AdminOverview.FailedFile] = []
            for try await (id, label, path, state, error, updated) in try await client.catalogQuery("""
                SELECT f.id, s.label, f.path, f.state, f.error, f.updated_at FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.state IN ('failed', 'unreadable') AND f.deleted_at IS NULL ORDER BY f.updated_at DESC, f.id DESC LIMIT \(limit)
                """, logger: logger).decode((Int64, String, String, String, String?, Date).self) {
                failed.append(.init(id: id, source: label, path: path, state: state, error: error, updatedAt: updated))
            }
            var total = 0
            for try await count in try await client.catalogQuery("""
                SELECT count(*) FROM objectstoragefiles WHERE state IN ('failed', 'unreadable') AND deleted_at IS NULL
                """, logger: logger).decode(Int64.self) { total = Int(count) }
            var alerts: [AdminOverview.Alert] = []
            for try await (kind, message, created, delivered, lastError) in try await client.catalogQuery("""
                SELECT kind, message, created_at, delivered_at, last_error FROM alerts ORDER BY created_at DESC, id DESC LIMIT \(limit)
                """, logger: logger).decode((String, String, Date, Date?, String?).self) {
                alerts.append(.init(kind: kind, message: message, createdAt: created, deliveredAt: delivered, lastError: lastError))
            }
            return AdminOverview(workers: workers, failed: failed, failedTotal: total, alerts: alerts)
        }
    }

    public enum RetryOutcome: Sendable, Equatable {
        /// Queued again in this state (`staged`, or `transcoded` for a video whose transcode was already done).
        case queued(String)
        /// Not a failed live file.
        case notFailed
        /// Its bytes are not in staging (the upload must run again).
        case noStagedCopy
    }

    /// Puts a failed file back in the queue with its attempts reset: a video whose transcode was done (its details
    /// name the profile) goes back to `transcoded`, every other file to `staged`. Duplicates that failed because
    /// this file failed become duplicates of it again (they fail again with it if it fails again). A file whose
    /// bytes are not in staging cannot be retried from here.
    public func retry(fileID: Int64) async throws -> RetryOutcome {
        try await CatalogError.wrapping("retry a failed file") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var row: (state: String, staged: Bool)?
                for try await (state, staged) in try await connection.query("""
                    SELECT state, storage = 'staging' AND storage_key IS NOT NULL FROM objectstoragefiles
                    WHERE id = \(fileID) AND deleted_at IS NULL FOR UPDATE
                    """, logger: logger).decode((String, Bool?).self) {
                    row = (state, staged ?? false)
                }
                guard let row, row.state == "failed" else { return .notFailed }
                guard row.staged else { return .noStagedCopy }
                var queued = "staged"
                for try await state in try await connection.query("""
                    UPDATE objectstoragefiles SET
                        state = CASE WHEN kind = 'video' AND details ? 'transcode_profile' THEN 'transcoded' ELSE 'staged' END,
                        attempts = 0, error = NULL, run_after = now()
                    WHERE id = \(fileID) RETURNING state
                    """, logger: logger).decode(String.self) {
                    queued = state
                }
                _ = try await connection.query("""
                    UPDATE objectstoragefiles SET state = 'duplicate', error = NULL
                    WHERE duplicate_of = \(fileID) AND state = 'failed' AND deleted_at IS NULL
                      AND error LIKE \("its content was to come from file \(fileID),%")
                    """, logger: logger)
                return .queued(queued)
            }
        }
    }
}
