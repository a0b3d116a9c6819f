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
    let catalog: AlertCatalog
    let settings: WatchdogSettings
    let store: AlertStore
    let delivery: AlertDelivery
    let logger: Logger

    public init(client: PostgresClient, settings: WatchdogSettings, webhookURL: Secret?, logger: Logger) {
        self.catalog = AlertCatalog(client: client, logger: logger)
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
        try await catalog.deadWorkers(deadAfter: settings.deadAfter, ignoreOlderThan: settings.ignoreOlderThan).map { worker in
            let who = Self.workerName(role: worker.role, host: worker.host, pid: worker.pid)
            let jobs = worker.jobsHeld
            let held = jobs == 0 ? "it held no jobs" : "it held \(jobs) job\(jobs == 1 ? "" : "s"), which other workers re-claim once the lease\(jobs == 1 ? "" : "s") expire"
            return Alert(
                eventKey: "\(AlertKind.workerDead):\(worker.id.uuidString.lowercased())", kind: AlertKind.workerDead,
                message: "\(who) stopped sending heartbeats \(Int(worker.silentSeconds.rounded())) s ago (killed, out of memory or crashed?); \(held)",
                details: [
                    "worker_id": .string(worker.id.uuidString.lowercased()), "role": .string(worker.role), "host": .string(worker.host),
                    "pid": worker.pid.map { .number(Double($0)) } ?? .null,
                    "heartbeat_at": .string(ISO8601DateFormatter().string(from: worker.heartbeatAt)), "jobs_held": .number(Double(jobs)),
                ])
        }
    }

    func expiredLeases() async throws -> [Alert] {
        try await catalog.expiredLeases(grace: settings.leaseGrace).map { jobs in
            Alert(
                eventKey: "\(AlertKind.leasesExpired):\(jobs.owner.uuidString.lowercased())", kind: AlertKind.leasesExpired,
                message: "\(jobs.count) job\(jobs.count == 1 ? "" : "s") of \(Self.workerName(jobs)) passed the lease without a renewal and will be re-claimed by another worker (files \(Self.list(jobs.fileIDs, total: jobs.count)))",
                details: [
                    "worker_id": .string(jobs.owner.uuidString.lowercased()), "jobs": .number(Double(jobs.count)),
                    "file_ids": .array(jobs.fileIDs.map { .number(Double($0)) }),
                ])
        }
    }

    /// Jobs another worker took over from an expired lease, as the claims recorded them (`lease_takeovers`): one
    /// alert per worker whose jobs were taken, whether or not this watchdog saw them change hands.
    func reclaimedJobs() async throws -> [Alert] {
        try await catalog.reclaimedJobs(window: settings.ignoreOlderThan).map { jobs in
            Alert(
                eventKey: "\(AlertKind.jobsReclaimed):\(jobs.owner.uuidString.lowercased())", kind: AlertKind.jobsReclaimed,
                message: "\(jobs.count) job\(jobs.count == 1 ? " was" : "s were") re-claimed from \(Self.workerName(jobs)) by other workers (files \(Self.list(jobs.fileIDs, total: jobs.count)))",
                details: ["worker_id": .string(jobs.owner.uuidString.lowercased()), "file_ids": .array(jobs.fileIDs.map { .number(Double($0)) })])
        }
    }

    func failedFiles() async throws -> [Alert] {
        try await catalog.failedFiles(window: settings.ignoreOlderThan).map { file in
            Alert(
                eventKey: "\(AlertKind.fileFailed):\(file.id):\(file.attempts)", kind: AlertKind.fileFailed,
                message: "\(file.sourceLabel): \(file.path) failed after \(file.attempts) attempt\(file.attempts == 1 ? "" : "s"): \(file.error ?? "no error recorded")",
                details: [
                    "file_id": .number(Double(file.id)), "source": .string(file.sourceLabel), "path": .string(file.path),
                    "error": file.error.map(JSONValue.string) ?? .null, "attempts": .number(Double(file.attempts)),
                    "failed_at": .string(ISO8601DateFormatter().string(from: file.failedAt)),
                ])
        }
    }

    /// A source whose upload finished having seen all of it (no walk problems) and whose every file is archived or
    /// a duplicate (unreadable files, which nothing can archive, are counted in the message). One alert per
    /// finished upload of the source.
    func archivedSources() async throws -> [Alert] {
        try await catalog.newlyArchivedSources().map { source in
            let archived = source.files["archived"] ?? 0, duplicates = source.files["duplicate"] ?? 0, unreadable = source.files["unreadable"] ?? 0
            let raw = source.bytes.values.reduce(0, +), stored = source.storedBytes
            var message = "\(source.label) is fully archived: \(archived) file\(archived == 1 ? "" : "s") archived, \(duplicates) duplicate\(duplicates == 1 ? "" : "s"); \(Format.bytes(raw)) in, \(Format.bytes(stored)) stored"
            if unreadable > 0 { message += "; \(unreadable) unreadable file\(unreadable == 1 ? "" : "s") could not be archived" }
            let micros = Int64((source.finishedAt.timeIntervalSince1970 * 1_000_000).rounded(.down))
            return Alert(
                eventKey: "\(AlertKind.sourceArchived):\(source.id):\(micros)", kind: AlertKind.sourceArchived, message: message,
                details: [
                    "source_id": .number(Double(source.id)), "label": .string(source.label), "files_archived": .number(Double(archived)),
                    "files_duplicate": .number(Double(duplicates)), "files_unreadable": .number(Double(unreadable)),
                    "bytes_raw": .number(Double(raw)), "bytes_stored": .number(Double(stored)),
                ])
        }
    }

    static func workerName(_ jobs: AlertCatalog.WorkerJobs) -> String {
        jobs.role.map { workerName(role: $0, host: jobs.host ?? "?", pid: jobs.pid) } ?? "worker \(jobs.owner.uuidString.lowercased().prefix(8))"
    }

    static func workerName(role: String, host: String, pid: Int?) -> String {
        "\(role) worker \(pid.map(String.init) ?? "?")@\(host)"
    }

    static func list(_ ids: [Int64], total: Int64) -> String {
        let shown = ids.prefix(10).map(String.init).joined(separator: ", ")
        return total > Int64(min(ids.count, 10)) ? shown + ", …" : shown
    }
}
