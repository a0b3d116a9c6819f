extension CatalogSchema {
    /// Issue 21, the admin side: scheduled maintenance tasks that the archivers run between batches, and the recent
    /// log lines (notice and above) of the workers and the status server.
    ///
    /// - `maintenance_tasks`: one row per named task (never a script: the CHECK lists the four the workers know).
    ///   `parameters` are the task's typed parameters as a JSON object, checked by the program before they are stored;
    ///   `every_seconds` is the interval between runs; a disabled task runs only when an admin asks (`run_requested_at`).
    ///   `lease_owner`/`lease_token`/`lease_expires_at` are the claim of the worker running it, renewed while it runs,
    ///   so that two workers never run a task at once and a dead worker's claim runs out. `last_*` is the last run.
    /// - `worker_logs`: the newest log lines of level notice and above, the secrets redacted before they were written,
    ///   pruned to the newest 5,000 and 14 days by the archiver's housekeeping.
    ///
    /// The seeds: `refresh-restore-status` hourly, `export-catalog` and `verify-sample` (5 %) weekly are on;
    /// `audit` (which downloads every readable archive object) is off until an admin turns it on. README's admin
    /// section says why.
    ///
    /// The migration's number may change when branches merge; its name says what it is.
    static let maintenance = Migration(version: 24, name: "maintenance tasks and worker logs", statements: [
        """
        CREATE TABLE maintenance_tasks (
            name TEXT PRIMARY KEY CHECK (name IN ('verify-sample', 'export-catalog', 'refresh-restore-status', 'audit')),
            parameters JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
            every_seconds INTEGER NOT NULL CHECK (every_seconds BETWEEN 60 AND 31536000),
            enabled BOOLEAN NOT NULL DEFAULT false,
            next_run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            run_requested_at TIMESTAMPTZ,
            lease_owner UUID,
            lease_token BIGINT NOT NULL DEFAULT 0,
            lease_expires_at TIMESTAMPTZ,
            last_started_at TIMESTAMPTZ,
            last_finished_at TIMESTAMPTZ,
            last_outcome TEXT CHECK (last_outcome IN ('ok', 'failed')),
            last_result TEXT,
            last_error TEXT,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        """
        INSERT INTO maintenance_tasks (name, parameters, every_seconds, enabled, next_run_at) VALUES
            ('verify-sample', '{"percent": 5}', 604800, true, now() + interval '1 hour'),
            ('export-catalog', '{}', 604800, true, now() + interval '1 hour'),
            ('refresh-restore-status', '{}', 3600, true, now()),
            ('audit', '{}', 2592000, false, now())
        """,
        """
        CREATE TABLE worker_logs (
            id BIGSERIAL PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL,
            program TEXT NOT NULL,
            worker TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ('notice', 'warning', 'error', 'critical')),
            message TEXT NOT NULL,
            metadata JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object')
        )
        """,
        "CREATE INDEX worker_logs_at_idx ON worker_logs (at DESC)",
    ])
}
