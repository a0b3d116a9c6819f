extension CatalogSchema {
    /// Restores asked for in the browser (issue 21). A request names a file, a folder or a whole source; the archiver
    /// asks the archive to restore every object it needs (`restore_requests`, shared with `uploader restore`), and
    /// copies each restored object into staging under `cache/` as plain bytes (a compressed bundle unpacked to its
    /// tar), because S3 cannot end a restored copy early: our own copy is what "uncache" deletes at once, and what
    /// the status server (which has no archive access) streams downloads from.
    ///
    /// - `directory`: '' for the whole source, else a folder prefix ending in '/'; NULL when one file is asked for.
    /// - `cached_until`: set when every object is cached; after it (or on "uncache") the copies are deleted.
    /// - `browser_restore_objects.stored_sha256`: the archive object's SHA-256 as stored, checked while it is fetched.
    ///   A compressed bundle's cached copy is its unpacked tar; each member is checked again when it is downloaded.
    static let browserRestores = Migration(version: 23, name: "browser restores", statements: [
        """
        CREATE TABLE browser_restores (
            id BIGSERIAL PRIMARY KEY,
            requested_by BIGINT NOT NULL REFERENCES users (id),
            source_id BIGINT NOT NULL REFERENCES sources (id),
            file_id BIGINT REFERENCES ObjectStorageFiles (id),
            directory TEXT,
            tier TEXT NOT NULL CHECK (tier IN ('Standard', 'Bulk')),
            days INTEGER NOT NULL CHECK (days BETWEEN 1 AND 30),
            state TEXT NOT NULL DEFAULT 'restoring' CHECK (state IN ('restoring', 'ready', 'failed', 'uncached', 'expired')),
            requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expected_ready_at TIMESTAMPTZ NOT NULL,
            ready_at TIMESTAMPTZ,
            cached_until TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            ended_by TEXT,
            error TEXT,
            files INTEGER NOT NULL CHECK (files >= 0),
            bytes BIGINT NOT NULL CHECK (bytes >= 0),
            CHECK ((file_id IS NULL) <> (directory IS NULL)),
            CHECK (directory IS NULL OR directory = '' OR right(directory, 1) = '/'),
            CHECK (state <> 'ready' OR cached_until IS NOT NULL)
        )
        """,
        "CREATE INDEX browser_restores_requester_idx ON browser_restores (requested_by, id)",
        "CREATE INDEX browser_restores_active_idx ON browser_restores (id) WHERE state IN ('restoring', 'ready')",
        """
        CREATE TABLE browser_restore_objects (
            restore_id BIGINT NOT NULL REFERENCES browser_restores (id),
            archive_key TEXT NOT NULL,
            stored_bytes BIGINT CHECK (stored_bytes >= 0),
            stored_sha256 TEXT CHECK (stored_sha256 ~ '^[0-9a-f]{64}$'),
            compression TEXT NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'zstd', 'gzip')),
            storage_class TEXT,
            cache_key TEXT,
            cached_at TIMESTAMPTZ,
            PRIMARY KEY (restore_id, archive_key)
        )
        """,
        // Downloads look a file's object up among the cached copies; the sweep finds copies to delete.
        "CREATE INDEX browser_restore_objects_cached_idx ON browser_restore_objects (archive_key) WHERE cache_key IS NOT NULL",
        "CREATE INDEX browser_restore_objects_uncached_idx ON browser_restore_objects (restore_id) WHERE cache_key IS NULL",
    ])
}
