extension CatalogSchema {
    /// Admin side of the family accounts (issue 21): one-time invitation links (only the SHA-256 of the link's token
    /// is kept; used once, before it expires) and the family settings (`self_registration`: `on` or `off`).
    static let invitations = Migration(version: 20, name: "invitations and family settings", statements: [
        """
        CREATE TABLE invitations (
            id BIGSERIAL PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
            role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
            created_by BIGINT REFERENCES users (id),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expires_at TIMESTAMPTZ NOT NULL,
            used_at TIMESTAMPTZ,
            used_by BIGINT REFERENCES users (id),
            CHECK (expires_at > created_at),
            CHECK ((used_at IS NULL) = (used_by IS NULL))
        )
        """,
        """
        CREATE TABLE family_settings (
            key TEXT PRIMARY KEY CHECK (key IN ('self_registration')),
            value TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
    ])
}
