extension CatalogSchema {
    /// Browser uploads over tus 1.0 (issue 21): one row per upload a member started from the browser (or any tus
    /// client), so that an acknowledged offset survives a restart of the status server.
    ///
    /// - `id`: the random 128-bit id in the upload's URL (`/api/uploads/<id>`), hex.
    /// - `owner_id`, `source_id`, `path`: who may touch it, and where the file goes (the source is the owner's).
    /// - `length`, `received`: the declared size and the bytes acknowledged, each one written and fsynced in the
    ///   partial file before the row says so.
    /// - `metadata`: the `Upload-Metadata` header as the client sent it (HEAD echoes it); `modified_at`: the file's
    ///   time (from the metadata, else the creation time), the catalog row's `modified_at`.
    /// - `state`: `receiving` (bytes coming), `storing` (all bytes here; the server hashes and stores them as
    ///   `uploader upload` would, retrying at `run_after` after a failure, `error` kept), `stored` (the catalog has
    ///   it: `file_id` is the path's newest row and `outcome` says `staged`, `duplicate`, `unchanged` or
    ///   `unreadable`). A terminated upload's row is deleted.
    ///
    /// The migration's number may change when branches merge; its name says what it is.
    static let browserUploads = Migration(version: 22, name: "browser uploads (tus)", statements: [
        """
        CREATE TABLE browser_uploads (
            id TEXT PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
            owner_id BIGINT NOT NULL REFERENCES users (id),
            source_id BIGINT NOT NULL REFERENCES sources (id),
            path TEXT NOT NULL CHECK (path <> ''),
            length BIGINT NOT NULL CHECK (length >= 0),
            received BIGINT NOT NULL DEFAULT 0 CHECK (received >= 0),
            metadata TEXT NOT NULL DEFAULT '',
            modified_at TIMESTAMPTZ NOT NULL,
            state TEXT NOT NULL DEFAULT 'receiving' CHECK (state IN ('receiving', 'storing', 'stored')),
            attempts INTEGER NOT NULL DEFAULT 0,
            run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
            error TEXT,
            file_id BIGINT REFERENCES objectstoragefiles (id),
            outcome TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (received <= length),
            CHECK (state = 'receiving' OR received = length)
        )
        """,
        "CREATE INDEX browser_uploads_open_idx ON browser_uploads (source_id) WHERE state <> 'stored'",
        "CREATE INDEX browser_uploads_due_idx ON browser_uploads (run_after) WHERE state = 'storing'",
        "CREATE INDEX browser_uploads_owner_idx ON browser_uploads (owner_id)",
    ])
}
