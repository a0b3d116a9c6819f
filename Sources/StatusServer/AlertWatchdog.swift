import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import ServiceLifecycle

/// Looks at the catalog every few seconds for events worth a message — a worker whose heartbeat stopped, leases
/// that expired (their jobs re-claimable) and jobs re-claimed by other workers, a file that failed for good, a
/// source fully archived — records each once in `alerts` (unique `event_key`, so several watchdogs or a restarted
/// one never repeat an alert), and sends what is due to the webhook.
///
/// A `Service`: it never throws; database trouble is logged and the next pass tries again.
public struct AlertWatchdog: Service {
    let client: PostgresClient
    let settings: WatchdogSettings
    let store: AlertStore
    let delivery: AlertDelivery
    let logger: Logger

    public init(client: PostgresClient, settings: WatchdogSettings, webhookURL: Secret?, logger: Logger) {
        self.client = client
        self.settings = settings
        self.logger = logger
        self.store = AlertStore(client: client, logger: logger)
        let sender = webhookURL.map { WebhookSender(url: $0) }
        self.delivery = AlertDelivery(store: store, sender: sender, logger: logger, summariseAbove: settings.summariseAbove)
        if let sender {
            logger.info("alerts go to the webhook", metadata: ["webhook": "\(sender.displayURL)", "format": "\(sender.target)"])
        } else {
            logger.notice("no BACKUP_ALERT_WEBHOOK_URL: alerts are recorded in the catalog and shown on the page, not sent")
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastDelivery = ContinuousClock.now
            while !Task.isCancelled {
                let recorded = await self.passLoggingErrors()
                // New alerts go out right away; retries on the delivery interval.
                if recorded > 0 || ContinuousClock.now - lastDelivery >= self.settings.deliveryInterval {
                    await self.delivery.deliverDue()
                    lastDelivery = ContinuousClock.now
                }
                try? await Task.sleep(for: self.settings.interval)
            }
        }
    }

    private func passLoggingErrors() async -> Int {
        do {
            return try await pass()
        } catch {
            logger.warning("watchdog pass failed; trying again", metadata: ["error": "\(String(describing: error))"])
            return 0
        }
    }

    /// One look at the catalog. Returns how many new alerts it recorded.
    @discardableResult
    public func pass() async throws -> Int {
        var recorded = 0
        for alert in try await deadWorkers() + expiredLeases() + reclaimedJobs() + failedFiles() + archivedSources() {
            if try await store.record(alert) {
                recorded += 1
                logger.notice("alert", metadata: ["event": "\(alert.eventKey)", "message": "\(alert.message)"])
            }
        }
        return recorded
    }

    // MARK: Events

    func deadWorkers() async throws -> [Alert] {
        let rows = try await client.query("""
            SELECT w.id, w.role, w.host, w.pid, w.heartbeat_at, extract(epoch FROM now() - w.heartbeat_at)::float8,
                   (SELECT count(*) FROM objectstoragefiles f
                    WHERE f.lease_owner = w.id AND f.state IN ('transcoding', 'archiving') AND f.lease_expires_at IS NOT NULL)::bigint
            FROM workers w
            WHERE w.stopped_at IS NULL
              AND w.heartbeat_at < now() - make_interval(secs => \(settings.deadAfter.seconds))
              AND w.heartbeat_at > now() - make_interval(secs => \(settings.ignoreOlderThan.seconds))
              AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'worker-dead:' || w.id::text)
            ORDER BY w.heartbeat_at LIMIT 100
            """, logger: logger)
        var alerts: [Alert] = []
        for try await (id, role, host, pid, heartbeat, age, jobs) in rows.decode((UUID, String, String, Int?, Date, Double, Int64).self) {
            let who = Self.workerName(role: role, host: host, pid: pid)
            let held = jobs == 0 ? "it held no jobs" : "it held \(jobs) job\(jobs == 1 ? "" : "s"), which other workers re-claim once the lease\(jobs == 1 ? "" : "s") expire"
            alerts.append(Alert(
                eventKey: "\(AlertKind.workerDead):\(id.uuidString.lowercased())", kind: AlertKind.workerDead,
                message: "\(who) stopped sending heartbeats \(Int(age.rounded())) s ago (killed, out of memory or crashed?); \(held)",
                details: [
                    "worker_id": .string(id.uuidString.lowercased()), "role": .string(role), "host": .string(host),
                    "pid": pid.map { .number(Double($0)) } ?? .null, "heartbeat_at": .string(ISO8601DateFormatter().string(from: heartbeat)),
                    "jobs_held": .number(Double(jobs)),
                ]))
        }
        return alerts
    }

    func expiredLeases() async throws -> [Alert] {
        let rows = try await client.query("""
            SELECT f.lease_owner, w.role, w.host, w.pid, count(*)::bigint, (array_agg(f.id ORDER BY f.id))[1:10]
            FROM objectstoragefiles f LEFT JOIN workers w ON w.id = f.lease_owner
            WHERE f.state IN ('transcoding', 'archiving') AND f.lease_expires_at < now() - make_interval(secs => \(settings.leaseGrace.seconds))
              AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'leases-expired:' || f.lease_owner::text)
            GROUP BY f.lease_owner, w.role, w.host, w.pid LIMIT 100
            """, logger: logger)
        var alerts: [Alert] = []
        for try await (owner, role, host, pid, count, ids) in rows.decode((UUID?, String?, String?, Int?, Int64, [Int64]).self) {
            guard let owner else { continue }
            let who = role.map { Self.workerName(role: $0, host: host ?? "?", pid: pid) } ?? "worker \(owner.uuidString.lowercased().prefix(8))"
            alerts.append(Alert(
                eventKey: "\(AlertKind.leasesExpired):\(owner.uuidString.lowercased())", kind: AlertKind.leasesExpired,
                message: "\(count) job\(count == 1 ? "" : "s") of \(who) passed the lease without a renewal and will be re-claimed by another worker (files \(Self.list(ids, total: count)))",
                details: [
                    "worker_id": .string(owner.uuidString.lowercased()), "jobs": .number(Double(count)),
                    "file_ids": .array(ids.map { .number(Double($0)) }),
                ]))
        }
        return alerts
    }

    /// Jobs another worker took over from an expired lease, as the claims recorded them (`lease_takeovers`): one
    /// alert per worker whose jobs were taken, whether or not this watchdog saw them change hands.
    func reclaimedJobs() async throws -> [Alert] {
        // The log only needs to outlive the alert window.
        _ = try await client.query(
            "DELETE FROM lease_takeovers WHERE taken_at < now() - make_interval(secs => \(settings.ignoreOlderThan.seconds))", logger: logger)
        let rows = try await client.query("""
            SELECT t.previous_owner, w.role, w.host, w.pid, count(DISTINCT t.file_id)::bigint, (array_agg(DISTINCT t.file_id ORDER BY t.file_id))[1:50]
            FROM lease_takeovers t LEFT JOIN workers w ON w.id = t.previous_owner
            WHERE t.taken_at > now() - make_interval(secs => \(settings.ignoreOlderThan.seconds))
              AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'jobs-reclaimed:' || t.previous_owner::text)
            GROUP BY t.previous_owner, w.role, w.host, w.pid ORDER BY t.previous_owner LIMIT 100
            """, logger: logger)
        var alerts: [Alert] = []
        for try await (owner, role, host, pid, count, ids) in rows.decode((UUID, String?, String?, Int?, Int64, [Int64]).self) {
            let who = role.map { Self.workerName(role: $0, host: host ?? "?", pid: pid) } ?? "worker \(owner.uuidString.lowercased().prefix(8))"
            alerts.append(Alert(
                eventKey: "\(AlertKind.jobsReclaimed):\(owner.uuidString.lowercased())", kind: AlertKind.jobsReclaimed,
                message: "\(count) job\(count == 1 ? " was" : "s were") re-claimed from \(who) by other workers (files \(Self.list(ids, total: count)))",
                details: ["worker_id": .string(owner.uuidString.lowercased()), "file_ids": .array(ids.map { .number(Double($0)) })]))
        }
        return alerts
    }

    func failedFiles() async throws -> [Alert] {
        let rows = try await client.query("""
            SELECT f.id, s.label, f.path, f.error, f.attempts, f.updated_at
            FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
            WHERE f.state = 'failed' AND f.updated_at > now() - make_interval(secs => \(settings.ignoreOlderThan.seconds))
              AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_key = 'file-failed:' || f.id || ':' || f.attempts)
            ORDER BY f.updated_at DESC LIMIT 200
            """, logger: logger)
        var alerts: [Alert] = []
        for try await (id, label, path, error, attempts, updated) in rows.decode((Int64, String, String, String?, Int, Date).self) {
            alerts.append(Alert(
                eventKey: "\(AlertKind.fileFailed):\(id):\(attempts)", kind: AlertKind.fileFailed,
                message: "\(label): \(path) failed after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(error ?? "no error recorded")",
                details: [
                    "file_id": .number(Double(id)), "source": .string(label), "path": .string(path), "error": error.map(JSONValue.string) ?? .null,
                    "attempts": .number(Double(attempts)), "failed_at": .string(ISO8601DateFormatter().string(from: updated)),
                ]))
        }
        return alerts
    }

    /// A source whose upload finished having seen all of it (no walk problems) and whose every file is archived or
    /// a duplicate (unreadable files, which nothing can archive, are counted in the message). One alert per
    /// finished upload of the source.
    func archivedSources() async throws -> [Alert] {
        let candidates = try await client.query("""
            SELECT s.id, s.label, s.finished_at, s.metadata::text FROM sources s
            WHERE s.finished_at IS NOT NULL AND s.finished_at > now() - interval '30 days'
              AND NOT EXISTS (SELECT 1 FROM alerts a
                              WHERE a.event_key = 'source-archived:' || s.id || ':' || floor(extract(epoch FROM s.finished_at) * 1000000)::bigint)
              AND NOT EXISTS (SELECT 1 FROM objectstoragefiles f \(unescaped: EffectiveState.holderJoin)
                              WHERE f.source_id = s.id AND f.deleted_at IS NULL
                                AND \(unescaped: EffectiveState.sql) IN ('staged', 'transcoding', 'transcoded', 'archiving', 'failed'))
              AND NOT EXISTS (SELECT 1 FROM pending_uploads p WHERE p.source_id = s.id)
              AND NOT EXISTS (SELECT 1 FROM source_problems sp WHERE sp.source_id = s.id)
              AND EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = s.id AND f.state IN ('archived', 'duplicate'))
            ORDER BY s.id LIMIT 50
            """, logger: logger)
        var found: [(Int64, String, Date)] = []
        for try await (id, label, finished, _) in candidates.decode((Int64, String, Date, String).self) {
            found.append((id, label, finished))
        }
        var alerts: [Alert] = []
        for (id, label, finished) in found {
            var files: [String: Int64] = [:]
            var bytes: [String: Int64] = [:]
            var stored: Int64 = 0
            let counts = try await client.query("""
                SELECT state, count(*)::bigint, coalesce(sum(size_bytes), 0)::bigint,
                       coalesce(sum(coalesce(stored_size_bytes, size_bytes)) FILTER (WHERE state = 'archived'), 0)::bigint
                FROM objectstoragefiles WHERE source_id = \(id) GROUP BY state
                """, logger: logger)
            for try await (state, count, size, storedSize) in counts.decode((String, Int64, Int64, Int64).self) {
                files[state] = count
                bytes[state] = size
                stored += storedSize
            }
            let archived = files["archived"] ?? 0, duplicates = files["duplicate"] ?? 0, unreadable = files["unreadable"] ?? 0
            let raw = bytes.values.reduce(0, +)
            var message = "\(label) is fully archived: \(archived) file\(archived == 1 ? "" : "s") archived, \(duplicates) duplicate\(duplicates == 1 ? "" : "s"); \(Format.bytes(raw)) in, \(Format.bytes(stored)) stored"
            if unreadable > 0 { message += "; \(unreadable) unreadable file\(unreadable == 1 ? "" : "s") could not be archived" }
            let micros = Int64((finished.timeIntervalSince1970 * 1_000_000).rounded(.down))
            alerts.append(Alert(
                eventKey: "\(AlertKind.sourceArchived):\(id):\(micros)", kind: AlertKind.sourceArchived, message: message,
                details: [
                    "source_id": .number(Double(id)), "label": .string(label), "files_archived": .number(Double(archived)),
                    "files_duplicate": .number(Double(duplicates)), "files_unreadable": .number(Double(unreadable)),
                    "bytes_raw": .number(Double(raw)), "bytes_stored": .number(Double(stored)),
                ]))
        }
        return alerts
    }

    static func workerName(role: String, host: String, pid: Int?) -> String {
        "\(role) worker \(pid.map(String.init) ?? "?")@\(host)"
    }

    static func list(_ ids: [Int64], total: Int64) -> String {
        let shown = ids.prefix(10).map(String.init).joined(separator: ", ")
        return total > Int64(min(ids.count, 10)) ? shown + ", …" : shown
    }
}

final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func exchange(_ newValue: Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        let old = value
        value = newValue
        return old
    }

    func withValue<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
