import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// The `alerts` outbox and the watchdog's questions about workers, leases, failures and finished sources. Alerts
/// (the module) turns these rows into messages and sends them; every statement is here.
public struct AlertCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: The outbox

    /// Records an event; false when it was already recorded (by this or another watchdog, before a restart…).
    public func record(eventKey: String, kind: String, message: String, detailsJSON: String) async throws -> Bool {
        try await CatalogError.wrapping("record alert \(eventKey)") {
            let rows = try await client.catalogQuery("""
                INSERT INTO alerts (event_key, kind, message, details) VALUES (\(eventKey), \(kind), \(message), \(detailsJSON)::jsonb)
                ON CONFLICT (event_key) DO NOTHING RETURNING id
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// Whether an event was recorded.
    public func exists(_ eventKey: String) async throws -> Bool {
        try await CatalogError.wrapping("look up alert \(eventKey)") {
            let rows = try await client.catalogQuery("SELECT 1 FROM alerts WHERE event_key = \(eventKey)", logger: logger)
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    public struct DueAlert: Sendable {
        public var id: Int64
        public var eventKey: String
        public var kind: String
        public var message: String
        public var detailsJSON: String
        public var createdAt: Date
        public var attempts: Int
    }

    /// Takes undelivered alerts that are due, pushing their next attempt forward so that another delivery loop
    /// (another status server) skips them while this one sends. `eventKey` takes one alert only.
    public func claimDue(limit: Int, eventKey: String?, hold: Duration) async throws -> [DueAlert] {
        try await CatalogError.wrapping("claim due alerts") {
            let rows = try await client.catalogQuery("""
                UPDATE alerts SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => \(hold.seconds))
                WHERE id IN (
                    SELECT id FROM alerts
                    WHERE delivered_at IS NULL AND next_attempt_at <= now() AND (\(eventKey)::text IS NULL OR event_key = \(eventKey))
                    ORDER BY id FOR UPDATE SKIP LOCKED LIMIT \(limit))
                RETURNING id, event_key, kind, message, details::text, created_at, attempts
                """, logger: logger)
            var result: [DueAlert] = []
            for try await (id, key, kind, message, details, created, attempts) in rows.decode((Int64, String, String, String, String, Date, Int).self) {
                result.append(DueAlert(id: id, eventKey: key, kind: kind, message: message, detailsJSON: details, createdAt: created, attempts: attempts))
            }
            return result.sorted { $0.id < $1.id }
        }
    }

    public func markDelivered(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await CatalogError.wrapping("mark alerts delivered") {
            _ = try await client.catalogQuery("UPDATE alerts SET delivered_at = now(), last_error = NULL WHERE id = ANY(\(ids))", logger: logger)
        }
    }

    public func markFailed(_ ids: [Int64], error: String, retryAfter: Duration) async throws {
        guard !ids.isEmpty else { return }
        try await CatalogError.wrapping("mark alerts failed") {
            _ = try await client.catalogQuery("""
                UPDATE alerts SET last_error = \(error), next_attempt_at = now() + make_interval(secs => \(retryAfter.seconds))
                WHERE id = ANY(\(ids))
                """, logger: logger)
        }
    }

    /// Alerts older than `maxAge` that were never delivered are news no more: they stay in the table (the page
    /// shows them) but are not sent, so a webhook configured late, or one down for a day, brings no flood.
    public func expireUndelivered(olderThan maxAge: Duration) async throws {
        try await CatalogError.wrapping("expire old alerts") {
            _ = try await client.catalogQuery("""
                UPDATE alerts SET next_attempt_at = 'infinity', last_error = coalesce(last_error || '; ', '') || 'not sent: too old'
                WHERE delivered_at IS NULL AND next_attempt_at < 'infinity' AND created_at < now() - make_interval(secs => \(maxAge.seconds))
                """, logger: logger)
        }
    }

    /// A worker on its way out after a fatal error: stopped, with the reason (so the watchdog does not also report it
    /// dead).
    public func markWorkerFatal(_ workerID: UUID, error: String) async throws {
        try await CatalogError.wrapping("mark worker stopped") {
            _ = try await client.catalogQuery("""
                UPDATE workers SET stopped_at = now(), stop_reason = \("fatal: " + error) WHERE id = \(workerID) AND stopped_at IS NULL
                """, logger: logger)
        }
    }

    // MARK: The watchdog's questions (each skips events already recorded)

    public struct DeadWorker: Sendable {
        public var id: UUID
        public var role: String
        public var host: String
        public var pid: Int?
        public var heartbeatAt: Date
        public var silentSeconds: Double
        public var jobsHeld: Int64
    }

    /// Workers that did not stop cleanly and whose heartbeat is older than `deadAfter` (but newer than
    /// `ignoreOlderThan`: old history is not news).
    public func deadWorkers(deadAfter: Duration, ignoreOlderThan: Duration) async throws -> [DeadWorker] {
        try await CatalogError.wrapping("look for dead workers") {
            let rows = try await client.catalogQuery("""
                SELECT w.id, w.role, w.host, w.pid, w.heartbeat_at, extract(epoch FROM now() - w.heartbeat_at)::float8,
                       (SELECT count(*) FROM objectstoragefiles f
                        WHERE f.lease_owner = w.id AND f.state IN ('transcoding', 'archiving') AND f.lease_expires_at IS NOT NULL)::bigint
                FROM workers w
                WHERE w.stopped_at IS NULL
                  AND w.heartbeat_at < now() - make_interval(secs => \(deadAfter.seconds))
                  AND w.heartbeat_at > now() - make_interval(secs => \(ignoreOlderThan.seconds))
                  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'worker-dead:' || w.id::text)
                ORDER BY w.heartbeat_at LIMIT 100
                """, logger: logger)
            var result: [DeadWorker] = []
            for try await (id, role, host, pid, heartbeat, age, jobs) in rows.decode((UUID, String, String, Int?, Date, Double, Int64).self) {
                result.append(DeadWorker(id: id, role: role, host: host, pid: pid, heartbeatAt: heartbeat, silentSeconds: age, jobsHeld: jobs))
            }
            return result
        }
    }

    /// Jobs of one worker: its leases that expired, or the jobs other workers took over from it.
    public struct WorkerJobs: Sendable {
        public var owner: UUID
        public var role: String?
        public var host: String?
        public var pid: Int?
        public var count: Int64
        public var fileIDs: [Int64]
    }

    /// Leases expired for longer than `grace`, by owner.
    public func expiredLeases(grace: Duration) async throws -> [WorkerJobs] {
        try await CatalogError.wrapping("look for expired leases") {
            let rows = try await client.catalogQuery("""
                SELECT f.lease_owner, w.role, w.host, w.pid, count(*)::bigint, (array_agg(f.id ORDER BY f.id))[1:10]
                FROM objectstoragefiles f LEFT JOIN workers w ON w.id = f.lease_owner
                WHERE f.state IN ('transcoding', 'archiving') AND f.lease_expires_at < now() - make_interval(secs => \(grace.seconds))
                  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'leases-expired:' || f.lease_owner::text)
                GROUP BY f.lease_owner, w.role, w.host, w.pid LIMIT 100
                """, logger: logger)
            var result: [WorkerJobs] = []
            for try await (owner, role, host, pid, count, ids) in rows.decode((UUID?, String?, String?, Int?, Int64, [Int64]).self) {
                guard let owner else { continue }
                result.append(WorkerJobs(owner: owner, role: role, host: host, pid: pid, count: count, fileIDs: ids))
            }
            return result
        }
    }

    /// Jobs another worker took over from an expired lease, as the claims recorded them (`lease_takeovers`), within
    /// `window`; older takeovers are forgotten first (the log only needs to outlive the alert window).
    public func reclaimedJobs(window: Duration) async throws -> [WorkerJobs] {
        try await CatalogError.wrapping("look for re-claimed jobs") {
            _ = try await client.catalogQuery(
                "DELETE FROM lease_takeovers WHERE taken_at < now() - make_interval(secs => \(window.seconds))", logger: logger)
            let rows = try await client.catalogQuery("""
                SELECT t.previous_owner, w.role, w.host, w.pid, count(DISTINCT t.file_id)::bigint, (array_agg(DISTINCT t.file_id ORDER BY t.file_id))[1:50]
                FROM lease_takeovers t LEFT JOIN workers w ON w.id = t.previous_owner
                WHERE t.taken_at > now() - make_interval(secs => \(window.seconds))
                  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'jobs-reclaimed:' || t.previous_owner::text)
                GROUP BY t.previous_owner, w.role, w.host, w.pid ORDER BY t.previous_owner LIMIT 100
                """, logger: logger)
            var result: [WorkerJobs] = []
            for try await (owner, role, host, pid, count, ids) in rows.decode((UUID, String?, String?, Int?, Int64, [Int64]).self) {
                result.append(WorkerJobs(owner: owner, role: role, host: host, pid: pid, count: count, fileIDs: ids))
            }
            return result
        }
    }

    public struct FailedFile: Sendable {
        public var id: Int64
        public var sourceLabel: String
        public var path: String
        public var error: String?
        public var attempts: Int
        public var failedAt: Date
    }

    /// Files that failed for good within `window`, one event per file and attempt count.
    public func failedFiles(window: Duration) async throws -> [FailedFile] {
        try await CatalogError.wrapping("look for failed files") {
            let rows = try await client.catalogQuery("""
                SELECT f.id, s.label, f.path, f.error, f.attempts, f.updated_at
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE f.state = 'failed' AND f.updated_at > now() - make_interval(secs => \(window.seconds))
                  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'file-failed:' || f.id || ':' || f.attempts)
                ORDER BY f.updated_at DESC LIMIT 200
                """, logger: logger)
            var result: [FailedFile] = []
            for try await (id, label, path, error, attempts, updated) in rows.decode((Int64, String, String, String?, Int, Date).self) {
                result.append(FailedFile(id: id, sourceLabel: label, path: path, error: error, attempts: attempts, failedAt: updated))
            }
            return result
        }
    }

    public struct ArchivedSource: Sendable {
        public var id: Int64
        public var label: String
        public var finishedAt: Date
        /// Per state: files and their raw bytes; and the bytes stored for the archived ones.
        public var files: [String: Int64]
        public var bytes: [String: Int64]
        public var storedBytes: Int64
    }

    /// Sources whose upload finished having seen all of it (no walk problems) and whose every file is archived or a
    /// duplicate, not yet announced for this finished upload, with their totals.
    public func newlyArchivedSources() async throws -> [ArchivedSource] {
        try await CatalogError.wrapping("look for archived sources") {
            let candidates = try await client.catalogQuery("""
                SELECT s.id, s.label, s.finished_at FROM sources s
                WHERE s.finished_at IS NOT NULL AND s.finished_at > now() - interval '30 days'
                  AND NOT EXISTS (SELECT 1 FROM alerts a
                                  WHERE a.event_key = 'source-archived:' || s.id || ':' || floor(extract(epoch FROM s.finished_at) * 1000000)::bigint)
                  AND NOT EXISTS (SELECT 1 FROM objectstoragefiles f \(unescaped: EffectiveState.holderJoin)
                                  WHERE f.source_id = s.id AND f.deleted_at IS NULL
                                    AND \(unescaped: EffectiveState.sql) IN ('spooled', 'staged', 'transcoding', 'transcoded', 'archiving', 'failed'))
                  AND NOT EXISTS (SELECT 1 FROM pending_uploads p WHERE p.source_id = s.id)
                  AND NOT EXISTS (SELECT 1 FROM source_problems sp WHERE sp.source_id = s.id)
                  AND EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = s.id AND f.state IN ('archived', 'duplicate'))
                ORDER BY s.id LIMIT 50
                """, logger: logger)
            var found: [ArchivedSource] = []
            for try await (id, label, finished) in candidates.decode((Int64, String, Date).self) {
                found.append(ArchivedSource(id: id, label: label, finishedAt: finished, files: [:], bytes: [:], storedBytes: 0))
            }
            for index in found.indices {
                let counts = try await client.catalogQuery("""
                    SELECT state, count(*)::bigint, coalesce(sum(size_bytes), 0)::bigint,
                           coalesce(sum(coalesce(stored_size_bytes, size_bytes)) FILTER (WHERE state = 'archived'), 0)::bigint
                    FROM objectstoragefiles WHERE source_id = \(found[index].id) GROUP BY state
                    """, logger: logger)
                for try await (state, count, size, storedSize) in counts.decode((String, Int64, Int64, Int64).self) {
                    found[index].files[state] = count
                    found[index].bytes[state] = size
                    found[index].storedBytes += storedSize
                }
            }
            return found
        }
    }
}
