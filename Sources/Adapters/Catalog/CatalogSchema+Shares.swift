extension CatalogSchema {
    /// Share links (issue 21): a time-limited, revocable link to one file. Only the SHA-256 of the link's random
    /// token is kept, as for sessions and API tokens.
    static let fileShares = Migration(version: 19, name: "file shares", statements: [
        """
        CREATE TABLE file_shares (
            id BIGSERIAL PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
            file_id BIGINT NOT NULL REFERENCES ObjectStorageFiles (id),
            created_by BIGINT NOT NULL REFERENCES users (id),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expires_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ,
            CHECK (expires_at > created_at)
        )
        """,
        "CREATE INDEX file_shares_file_idx ON file_shares (file_id)",
    ])
}
