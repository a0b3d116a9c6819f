import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// One row of `maintenance_tasks`, as the admin page and `uploader maintenance list` show it.
public struct MaintenanceTaskRecord: Sendable, Hashable {
    public var name: MaintenanceTaskName
    public var parameters: MaintenanceParameters
    public var everySeconds: Int
    public var enabled: Bool
    public var nextRunAt: Date
    /// An admin asked for a run ("Run now", `uploader maintenance run`); it runs even when disabled.
    public var runRequested: Bool
    /// Someone holds it now (a live lease).
    public var running: Bool
    public var lastStartedAt: Date?
    public var lastFinishedAt: Date?
    public var lastOutcome: String?
    public var lastResult: String?
    public var lastError: String?
}

/// A task a worker claimed: run it, renew the lease while it runs, then `finish` with the same token.
public struct ClaimedMaintenanceTask: Sendable, Hashable {
    public var name: MaintenanceTaskName
    public var parameters: MaintenanceParameters
    public var leaseToken: Int64
}

/// `maintenance_tasks`: the schedule, the claims of the workers that run the tasks, and the last results.
public struct MaintenanceCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func tasks() async throws -> [MaintenanceTaskRecord] {
        try await CatalogError.wrapping("list the maintenance tasks") {
            var result: [MaintenanceTaskRecord] = []
            for try await row in try await client.catalogQuery("""
                SELECT name, parameters::text, every_seconds, enabled, next_run_at, run_requested_at IS NOT NULL,
                       coalesce(lease_expires_at > now(), false), last_started_at, last_finished_at, last_outcome, last_result, last_error
                FROM maintenance_tasks ORDER BY name
                """, logger: logger).decode((String, String, Int, Bool, Date, Bool, Bool, Date?, Date?, String?, String?, String?).self) {
                guard let name = MaintenanceTaskName(rawValue: row.0) else { continue }
                result.append(MaintenanceTaskRecord(
                    name: name, parameters: MaintenanceParameters(json: row.1), everySeconds: row.2, enabled: row.3, nextRunAt: row.4,
                    runRequested: row.5, running: row.6, lastStartedAt: row.7, lastFinishedAt: row.8, lastOutcome: row.9, lastResult: row.10,
                    lastError: row.11))
            }
            return result
        }
    }

    /// Changes a task's schedule and parameters (checked by `MaintenanceParameters.checked` and
    /// `MaintenanceSchedule.checked` first). An audit's source must exist: checked here, in the same statement.
    /// A new interval counts from the last run (or from now, for a task that never ran).
    public func update(_ name: MaintenanceTaskName, everySeconds: Int, enabled: Bool, parameters: MaintenanceParameters) async throws {
        if let label = parameters.sourceLabel, try await !sourceExists(label) {
            throw MaintenanceError(.invalidSetting, "audit: no source is labelled '\(label)' (uploader sources lists them)")
        }
        try await CatalogError.wrapping("change the maintenance task") {
            _ = try await client.catalogQuery("""
                UPDATE maintenance_tasks SET every_seconds = \(everySeconds), enabled = \(enabled), parameters = \(parameters.json)::jsonb,
                    next_run_at = CASE WHEN every_seconds = \(everySeconds) THEN next_run_at
                                       ELSE coalesce(last_finished_at, now()) + make_interval(secs => \(everySeconds)) END,
                    updated_at = now()
                WHERE name = \(name.rawValue)
                """, logger: logger)
        }
    }

    /// "Run now": due at once, and run even when disabled. Asked while it runs, it runs again right after.
    public func requestRun(_ name: MaintenanceTaskName) async throws {
        try await CatalogError.wrapping("queue the maintenance task") {
            _ = try await client.catalogQuery("""
                UPDATE maintenance_tasks SET next_run_at = now(), run_requested_at = now(), updated_at = now() WHERE name = \(name.rawValue)
                """, logger: logger)
        }
    }

    /// Claims one due task nobody holds (a claim whose lease ran out counts as nobody's: its worker died).
    /// `FOR UPDATE SKIP LOCKED` and the lease together: two workers never get the same task.
    public func claimDue(workerID: UUID, lease: Duration) async throws -> ClaimedMaintenanceTask? {
        try await CatalogError.wrapping("claim a maintenance task") {
            for try await (name, parameters, token) in try await client.catalogQuery("""
                UPDATE maintenance_tasks AS t SET lease_owner = \(workerID), lease_token = t.lease_token + 1,
                    lease_expires_at = now() + make_interval(secs => \(lease.seconds)), last_started_at = now()
                WHERE t.name = (
                    SELECT name FROM maintenance_tasks
                    WHERE next_run_at <= now() AND (enabled OR run_requested_at IS NOT NULL)
                      AND (lease_expires_at IS NULL OR lease_expires_at <= now())
                    ORDER BY next_run_at, name LIMIT 1
                    FOR UPDATE SKIP LOCKED)
                RETURNING t.name, t.parameters::text, t.lease_token
                """, logger: logger).decode((String, String, Int64).self) {
                guard let task = MaintenanceTaskName(rawValue: name) else { return nil }
                return ClaimedMaintenanceTask(name: task, parameters: MaintenanceParameters(json: parameters), leaseToken: token)
            }
            return nil
        }
    }

    /// Extends the claim while the task runs; false when it was lost (it ran out and another worker took it).
    public func renew(_ task: ClaimedMaintenanceTask, workerID: UUID, lease: Duration) async throws -> Bool {
        try await CatalogError.wrapping("renew the maintenance task's lease") {
            let rows = try await client.catalogQuery("""
                UPDATE maintenance_tasks SET lease_expires_at = now() + make_interval(secs => \(lease.seconds))
                WHERE name = \(task.name.rawValue) AND lease_owner = \(workerID) AND lease_token = \(task.leaseToken) AND lease_expires_at > now()
                RETURNING name
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    /// Records the run and schedules the next: `every_seconds` after an ok run, at most an hour after a failed one.
    /// A "Run now" that came while it ran is kept (due at once). Fenced by the lease: false when it was lost.
    @discardableResult
    public func finish(_ task: ClaimedMaintenanceTask, workerID: UUID, outcome: MaintenanceOutcome) async throws -> Bool {
        let ok: Bool, result: String?, error: String?
        switch outcome {
        case .ok(let text): (ok, result, error) = (true, text, nil)
        case .failed(let text, let problem): (ok, result, error) = (false, text, problem)
        }
        return try await CatalogError.wrapping("record the maintenance task's run") {
            let rows = try await client.catalogQuery("""
                UPDATE maintenance_tasks SET lease_owner = NULL, lease_expires_at = NULL, last_finished_at = now(),
                    last_outcome = CASE WHEN \(ok) THEN 'ok' ELSE 'failed' END, last_result = \(result), last_error = \(error),
                    run_requested_at = CASE WHEN run_requested_at > last_started_at THEN run_requested_at END,
                    next_run_at = CASE WHEN run_requested_at > last_started_at THEN now()
                                       WHEN \(ok) THEN now() + make_interval(secs => every_seconds)
                                       ELSE now() + make_interval(secs => least(every_seconds, 3600)) END
                WHERE name = \(task.name.rawValue) AND lease_owner = \(workerID) AND lease_token = \(task.leaseToken)
                RETURNING name
                """, logger: logger)
            for try await _ in rows.decode(String.self) { return true }
            return false
        }
    }

    /// Gives a claim back unfinished (the worker is shutting down): due again at once, for another worker.
    public func release(_ task: ClaimedMaintenanceTask, workerID: UUID) async throws {
        try await CatalogError.wrapping("release the maintenance task") {
            _ = try await client.catalogQuery("""
                UPDATE maintenance_tasks SET lease_owner = NULL, lease_expires_at = NULL
                WHERE name = \(task.name.rawValue) AND lease_owner = \(workerID) AND lease_token = \(task.leaseToken)
                """, logger: logger)
        }
    }

    func sourceExists(_ label: String) async throws -> Bool {
        try await CatalogError.wrapping("look up the source") {
            for try await exists in try await client.catalogQuery("SELECT EXISTS (SELECT 1 FROM sources WHERE label = \(label))", logger: logger).decode(Bool.self) {
                return exists
            }
            return false
        }
    }
}

/// How a run ended: a one-paragraph result with numbers, and for a failure the error (and what was done before it).
public enum MaintenanceOutcome: Sendable, Hashable {
    case ok(String)
    case failed(result: String?, error: String)
}
