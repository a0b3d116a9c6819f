extension CatalogSchema {
    /// Family accounts (issue 21): people who log in to the status server, their server-side sessions and personal
    /// API tokens, failed logins for the rate limit, and an owner on every source.
    ///
    /// - `users`: a name (letters, digits, `.`, `_`, `-`), a role, a bcrypt hash of the password; disabling keeps the
    ///   row (sources keep their owner) and refuses the login and every session and token.
    /// - `user_sessions` and `api_tokens` keep only the SHA-256 of the random secret the browser or script holds
    ///   (both are 256-bit random values, so a fast hash is enough; a stolen table opens nothing).
    /// - `login_failures`: one row per failed login, keyed by `user:<name>` and `address:<ip>`; the server counts them
    ///   over a window, so the limit holds across restarts and across several server copies.
    /// - `sources.owner_id`: NULL for sources from before this migration (or uploaded without an owner). An ownerless
    ///   source is visible to admins only.
    static let accounts = Migration(version: 16, name: "family accounts", statements: [
        """
        CREATE TABLE users (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
            role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
            password_hash TEXT NOT NULL CHECK (password_hash LIKE '$2%'),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            disabled_at TIMESTAMPTZ
        )
        """,
        """
        CREATE TABLE user_sessions (
            id_hash TEXT PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
            user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expires_at TIMESTAMPTZ NOT NULL
        )
        """,
        "CREATE INDEX user_sessions_user_idx ON user_sessions (user_id)",
        """
        CREATE TABLE api_tokens (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            name TEXT NOT NULL CHECK (name <> ''),
            token_hash TEXT NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            revoked_at TIMESTAMPTZ
        )
        """,
        "CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (user_id, name) WHERE revoked_at IS NULL",
        """
        CREATE TABLE login_failures (
            key TEXT NOT NULL,
            failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX login_failures_key_idx ON login_failures (key, failed_at)",
        "ALTER TABLE sources ADD COLUMN owner_id BIGINT REFERENCES users (id)",
        "CREATE INDEX sources_owner_idx ON sources (owner_id)",
    ])
}
