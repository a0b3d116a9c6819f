import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A row a worker holds: its lease is valid while `leaseToken` is the row's current token and the lease has not
/// expired. Every change a worker makes is guarded by both, so a worker that lost its lease (paused, partitioned,
/// presumed dead) can never complete or fail a job that someone else now owns.
public struct ClaimedFile: Sendable, Hashable {
    public let fileID: Int64
    public let leaseToken: Int64
    /// The state the row was claimed from (`staged` or `transcoded`).
    public let claimedFrom: FileState
    public let kind: FileKind
    /// Attempts including this one.
    public let attempt: Int
    public let maxAttempts: Int
    public let storageKey: String?
    public let hash: String?
    public let sizeBytes: Int64
}

/// Which rows a worker role takes, and the state it holds them in.
public struct WorkStep: Sendable, Hashable {
    public let role: WorkerRole
    /// The state rows are in while leased.
    public let leasedState: FileState
    /// A SQL condition over `state` and `kind` selecting claimable rows (constant text, never user input).
    let claimableCondition: String

    /// The transcoder takes staged videos.
    public static let transcode = WorkStep(role: .transcoder, leasedState: .transcoding, claimableCondition: "state = 'staged' AND kind = 'video' AND deleted_at IS NULL")
    /// The archiver takes staged files that are not videos, and transcoded videos.
    public static let archive = WorkStep(role: .archiver, leasedState: .archiving, claimableCondition: "((state = 'staged' AND kind <> 'video') OR state = 'transcoded') AND deleted_at IS NULL")
}

/// How much work a step has left.
public struct QueueBacklog: Sendable, Hashable {
    public let runnable: Int
    public let held: Int
    public let waiting: Int
    public let nextRetry: Date?
}

/// Postgres as the queue: claims with `FOR UPDATE SKIP LOCKED`, leases renewed by heartbeat, fenced transitions.
public struct WorkQueue: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records a worker process in `workers` (its heartbeat starts now).
    public func register(workerID: UUID, role: WorkerRole, host: String, processID: Int32) async throws {
        try await CatalogError.wrapping("register the worker") {
            _ = try await client.catalogQuery("""
                INSERT INTO workers (id, role, host, pid, version) VALUES (\(workerID), \(role.rawValue), \(host), \(Int(processID)), \(PipelineVersion.current))
                """, logger: logger)
        }
    }

    /// A worker process as `<program> health` judges it: its newest row for this role and host (and process, when
    /// given), how old its heartbeat is by the database's clock, and whether it recorded a stop.
    public struct WorkerPulse: Sendable, Hashable {
        public let workerID: UUID
        public let processID: Int?
        public let heartbeatAge: Double
        public let stopReason: String?
        public let stopped: Bool
    }

    public func pulse(role: WorkerRole, host: String, processID: Int32?) async throws -> WorkerPulse? {
        try await CatalogError.wrapping("read the worker's heartbeat") {
            let pid = processID.map(Int.init)
            let rows = try await client.catalogQuery("""
                SELECT id, pid, extract(epoch FROM now() - heartbeat_at)::float8, stop_reason, stopped_at IS NOT NULL
                FROM workers
                WHERE role = \(role.rawValue) AND host = \(host) AND (\(pid)::int IS NULL OR pid = \(pid))
                ORDER BY started_at DESC LIMIT 1
                """, logger: logger)
            for try await (id, pid, age, reason, stopped) in rows.decode((UUID, Int?, Double, String?, Bool).self) {
                return WorkerPulse(workerID: id, processID: pid, heartbeatAge: age, stopReason: reason, stopped: stopped)
            }
            return nil
        }
    }

    public func heartbeat(workerID: UUID) async throws {
        try await CatalogError.wrapping("record the heartbeat") {
            _ = try await client.catalogQuery("UPDATE workers SET heartbeat_at = now() WHERE id = \(workerID)", logger: logger)
        }
    }

    public func markStopped(workerID: UUID, reason: String) async throws {
        try await CatalogError.wrapping("mark the worker stopped") {
            _ = try await client.catalogQuery("UPDATE workers SET stopped_at = now(), stop_reason = \(reason) WHERE id = \(workerID)", logger: logger)
        }
    }

    /// Claims up to `limit` rows for `step` in one statement: runnable rows of the step's input states, and rows
    /// whose lease expired (their owner died). Each claim increases the row's fencing token and its attempts; a
    /// takeover of an expired lease is recorded in `lease_takeovers` by the same statement.
    public func claim(_ step: WorkStep, workerID: UUID, limit: Int, lease: Duration) async throws -> [ClaimedFile] {
        try await CatalogError.wrapping("claim jobs") {
            let sql = """
                WITH candidates AS (
                    SELECT id, lease_owner AS previous_owner, state = $3 AS taken_over FROM objectstoragefiles
                    WHERE (\(step.claimableCondition) AND run_after <= now())
                       OR (state = $3 AND lease_expires_at < now())
                    ORDER BY id
                    FOR UPDATE SKIP LOCKED
                    LIMIT $4
                ), claimed AS (
                    UPDATE objectstoragefiles AS f SET
                        lease_from_state = CASE WHEN f.state = $3 THEN f.lease_from_state ELSE f.state END,
                        state = $3, lease_owner = $1, lease_token = f.lease_token + 1,
                        lease_expires_at = now() + make_interval(secs => $2), attempts = f.attempts + 1
                    FROM candidates c WHERE f.id = c.id
                    RETURNING f.id, f.lease_token, f.lease_from_state, f.kind, f.attempts, f.max_attempts, f.storage_key, f.hash,
                        f.size_bytes, c.previous_owner, c.taken_over
                ), logged AS (
                    INSERT INTO lease_takeovers (file_id, previous_owner, new_owner, lease_token)
                    SELECT id, previous_owner, $1, lease_token FROM claimed WHERE taken_over AND previous_owner IS NOT NULL
                )
                SELECT id, lease_token, lease_from_state, kind, attempts, max_attempts, storage_key, hash, size_bytes FROM claimed
                """
            var bindings = PostgresBindings()
            bindings.append(workerID)
            bindings.append(lease.seconds)
            bindings.append(step.leasedState.rawValue)
            bindings.append(limit)
            var claimed: [ClaimedFile] = []
            let rows = try await client.catalogQuery(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            for try await (id, token, from, kind, attempts, maxAttempts, key, hash, size) in rows.decode(
                (Int64, Int64, String, String, Int, Int, String?, String?, Int64).self) {
                claimed.append(ClaimedFile(
                    fileID: id, leaseToken: token, claimedFrom: FileState(rawValue: from) ?? .staged, kind: FileKind(rawValue: kind) ?? .regular,
                    attempt: attempts, maxAttempts: maxAttempts, storageKey: key, hash: hash, sizeBytes: size))
            }
            return claimed.sorted { $0.fileID < $1.fileID }
        }
    }

    /// Extends a lease; false when the worker no longer holds it (then it must stop working on the row).
    public func renew(_ job: ClaimedFile, workerID: UUID, lease: Duration) async throws -> Bool {
        try await CatalogError.wrapping("renew the lease") {
            try await guardedUpdate(
                "lease_expires_at = now() + make_interval(secs => $4)", job: job, workerID: workerID, requireUnexpired: true,
                extra: [lease.seconds])
        }
    }

    /// Gives a row back untouched (graceful shutdown, or waiting for another row): claimable again after
    /// `runAfter`, and the attempt is not counted.
    public func release(_ job: ClaimedFile, workerID: UUID, runAfter: Duration = .zero) async throws -> Bool {
        try await CatalogError.wrapping("release the job") {
            try await guardedUpdate(
                """
                state = lease_from_state, lease_from_state = NULL, lease_owner = NULL, lease_expires_at = NULL,
                attempts = greatest(attempts - 1, 0), run_after = now() + make_interval(secs => $4)
                """,
                job: job, workerID: workerID, requireUnexpired: false, extra: [runAfter.seconds])
        }
    }

    /// Extends the leases of many rows in one statement. A row missing from both sets of the result was lost
    /// (expired and re-claimed, or released) and must not be worked on any further.
    ///
    /// The renewal never waits for a row lock: a row locked by another transaction (most often this worker's own
    /// completion of it, which locks its rows in id order) is skipped and reported `busy`, neither renewed nor
    /// lost; the next heartbeat looks again. Waiting instead would let the heartbeat and the completion lock the
    /// same rows in different orders, and PostgreSQL would end one of them as a deadlock: most likely what a CI
    /// run saw as a whole bundle failing its record under load.
    public func renewAll(_ jobs: [ClaimedFile], workerID: UUID, lease: Duration) async throws -> LeaseRenewal {
        try await CatalogError.wrapping("renew the leases") {
            guard !jobs.isEmpty else { return LeaseRenewal(renewed: [], busy: []) }
            let ids = jobs.map(\.fileID)
            let tokens = jobs.map(\.leaseToken)
            let rows = try await client.catalogQuery("""
                WITH held AS (
                    SELECT * FROM unnest(\(ids)::bigint[], \(tokens)::bigint[]) AS h(id, token)
                ), free AS (
                    SELECT f.id FROM objectstoragefiles AS f WHERE f.id = ANY(\(ids)) FOR UPDATE OF f SKIP LOCKED
                ), renewed AS (
                    UPDATE objectstoragefiles AS f SET lease_expires_at = now() + make_interval(secs => \(lease.seconds))
                    FROM held JOIN free ON free.id = held.id
                    WHERE f.id = held.id AND f.lease_token = held.token AND f.lease_owner = \(workerID) AND f.lease_expires_at > now()
                    RETURNING f.id
                )
                SELECT id, true FROM renewed
                UNION ALL SELECT held.id, false FROM held WHERE NOT EXISTS (SELECT 1 FROM free WHERE free.id = held.id)
                """, logger: logger)
            var renewal = LeaseRenewal(renewed: [], busy: [])
            for try await (id, renewed) in rows.decode((Int64, Bool).self) {
                if renewed { renewal.renewed.insert(id) } else { renewal.busy.insert(id) }
            }
            return renewal
        }
    }

    /// Rows whose worker died holding them on their last attempt (a crash, an out-of-memory kill, a file that
    /// brings the worker down every time) become `failed` instead of being claimed forever.
    @discardableResult
    public func failAbandoned(_ step: WorkStep) async throws -> [Int64] {
        try await CatalogError.wrapping("fail abandoned jobs") {
            let rows = try await client.catalogQuery("""
                UPDATE objectstoragefiles SET
                    state = 'failed', lease_from_state = NULL, lease_owner = NULL, lease_expires_at = NULL,
                    error = 'the worker holding this file stopped without finishing it on each of its ' || attempts
                        || ' attempts (crash, out of memory or killed)' || coalesce('; last error: ' || error, '')
                WHERE state = \(step.leasedState.rawValue) AND lease_expires_at < now() AND attempts >= max_attempts
                RETURNING id
                """, logger: logger)
            var ids: [Int64] = []
            for try await id in rows.decode(Int64.self) { ids.append(id) }
            try await failDuplicates(of: ids)
            return ids
        }
    }

    /// What is left for a step: rows claimable now, rows held by some worker, and rows waiting to be retried
    /// (with the earliest retry time). A `--once` run keeps going while anything is runnable or held.
    public func backlog(_ step: WorkStep) async throws -> QueueBacklog {
        try await CatalogError.wrapping("read the backlog") {
            let sql = """
                SELECT count(*) FILTER (WHERE \(step.claimableCondition) AND run_after <= now()),
                       count(*) FILTER (WHERE state = $1),
                       count(*) FILTER (WHERE \(step.claimableCondition) AND run_after > now()),
                       min(run_after) FILTER (WHERE \(step.claimableCondition) AND run_after > now())
                FROM objectstoragefiles
                WHERE state IN ('staged', 'transcoded', $1)
                """
            var bindings = PostgresBindings()
            bindings.append(step.leasedState.rawValue)
            let rows = try await client.catalogQuery(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            for try await (runnable, held, waiting, nextRetry) in rows.decode((Int64, Int64, Int64, Date?).self) {
                return QueueBacklog(runnable: Int(runnable), held: Int(held), waiting: Int(waiting), nextRetry: nextRetry)
            }
            return QueueBacklog(runnable: 0, held: 0, waiting: 0, nextRetry: nil)
        }
    }

    /// Records a failed attempt: back to the claimed-from state after `retryAfter`, or `failed` with the error
    /// after the last attempt.
    /// A `permanent` failure (one that no retry can fix) skips the remaining attempts.
    /// A row that fails for good takes its duplicates with it (see `failDuplicates`).
    public func fail(_ job: ClaimedFile, workerID: UUID, error: String, retryAfter: Duration, permanent: Bool = false) async throws -> Bool {
        try await CatalogError.wrapping("record the failed attempt") {
            let updated = try await guardedUpdate("""
                state = CASE WHEN attempts >= max_attempts OR $6 THEN 'failed' ELSE lease_from_state END,
                lease_from_state = NULL, lease_owner = NULL, lease_expires_at = NULL, error = $4,
                run_after = now() + make_interval(secs => $5)
                """, job: job, workerID: workerID, requireUnexpired: false, extra: [error, retryAfter.seconds, permanent])
            if updated { try await failDuplicates(of: [job.fileID]) }
            return updated
        }
    }

    /// Files recorded as duplicates of a row that then failed for good hold no bytes of their own anywhere: they
    /// are not done either. They become `failed` too, naming the holder, so they are shown as failed and the
    /// next upload of their source sends their content again.
    func failDuplicates(of ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await client.catalogQuery("""
            UPDATE objectstoragefiles AS d SET state = 'failed',
                error = 'its content was to come from file ' || h.id || ', which failed: ' || coalesce(h.error, 'unknown error')
            FROM objectstoragefiles AS h
            WHERE h.id = ANY(\(ids)) AND h.state = 'failed' AND d.duplicate_of = h.id AND d.state = 'duplicate' AND d.deleted_at IS NULL
            """, logger: logger)
    }

    /// Moves a held row to its next state with the given assignments, only if the lease is still this worker's
    /// (owner and token). The assignments are constant SQL written in this module; values are bound as $4, $5….
    func guardedUpdate(
        _ assignments: String, job: ClaimedFile, workerID: UUID, requireUnexpired: Bool, extra: [any PostgresEncodable & Sendable] = []
    ) async throws -> Bool {
        let sql = """
            UPDATE objectstoragefiles SET \(assignments)
            WHERE id = $1 AND lease_owner = $2 AND lease_token = $3\(requireUnexpired ? " AND lease_expires_at > now()" : "")
            RETURNING id
            """
        var bindings = PostgresBindings()
        bindings.append(job.fileID)
        bindings.append(workerID)
        bindings.append(job.leaseToken)
        for value in extra { try bindings.append(value) }
        var updated = false
        for try await _ in try await client.catalogQuery(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).decode(Int64.self) {
            updated = true
        }
        return updated
    }
}

/// What one heartbeat's renewal found: rows renewed, and rows another transaction had locked (not looked at).
public struct LeaseRenewal: Sendable, Hashable {
    public var renewed: Set<Int64>
    public var busy: Set<Int64>

    /// The rows that are no longer this worker's.
    public func lost(of held: [ClaimedFile]) -> [Int64] {
        held.map(\.fileID).filter { !renewed.contains($0) && !busy.contains($0) }
    }
}
