/// The catalog's tables, as versioned migrations. Names are created unquoted, so `ObjectStorageFiles` and
/// `objectstoragefiles` both work. docs/architecture.md explains each table and column.
public enum CatalogSchema {
    public static let migrations: [Migration] = [initialCatalog, ingestBookkeeping, workQueue, archiveAndAlerts, restoreAndVerify, leaseTakeovers,
                                                       contentHolders, walkProblems, keepRaw, sourceEncryption, snapshots, sourceTier,
                                                       spool, uploadIndexToken, exportChanges, accounts, signedURLRefresh, sourceAudits, fileShares, invitations, rescueMapKeys, browserUploads,
                                                       browserRestores, maintenance, replacedBundles, keptRawVideos, untranscodedVideos,
                                                       epochOncePerTransaction]

    static let initialCatalog = Migration(version: 1, name: "initial catalog", statements: [
        """
        CREATE TABLE sources (
            id BIGSERIAL PRIMARY KEY,
            label TEXT NOT NULL UNIQUE CHECK (label <> ''),
            metadata JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
            note TEXT,
            origin TEXT,
            started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            finished_at TIMESTAMPTZ,
            files_seen BIGINT NOT NULL DEFAULT 0 CHECK (files_seen >= 0),
            bytes_seen BIGINT NOT NULL DEFAULT 0 CHECK (bytes_seen >= 0),
            files_stored BIGINT NOT NULL DEFAULT 0 CHECK (files_stored >= 0),
            files_duplicate BIGINT NOT NULL DEFAULT 0 CHECK (files_duplicate >= 0),
            files_unreadable BIGINT NOT NULL DEFAULT 0 CHECK (files_unreadable >= 0),
            files_skipped BIGINT NOT NULL DEFAULT 0 CHECK (files_skipped >= 0)
        )
        """,
        """
        CREATE TABLE workers (
            id UUID PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('uploader', 'transcoder', 'archiver', 'status-server', 'pipeline')),
            host TEXT NOT NULL,
            pid INTEGER,
            version TEXT,
            started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            stopped_at TIMESTAMPTZ,
            stop_reason TEXT
        )
        """,
        "CREATE INDEX workers_heartbeat_idx ON workers (heartbeat_at) WHERE stopped_at IS NULL",
        """
        CREATE TABLE bundles (
            id BIGSERIAL PRIMARY KEY,
            archive_key TEXT NOT NULL UNIQUE,
            manifest_key TEXT,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'uploading', 'archived', 'rewriting', 'deleted')),
            compression TEXT NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'zstd', 'gzip')),
            member_count INTEGER NOT NULL DEFAULT 0 CHECK (member_count >= 0),
            raw_bytes BIGINT NOT NULL DEFAULT 0 CHECK (raw_bytes >= 0),
            stored_bytes BIGINT CHECK (stored_bytes >= 0),
            hash TEXT CHECK (hash ~ '^[0-9a-f]{64}$'),
            storage_class TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            archived_at TIMESTAMPTZ
        )
        """,
        """
        CREATE TABLE ObjectStorageFiles (
            id BIGSERIAL PRIMARY KEY,
            source_id BIGINT NOT NULL REFERENCES sources (id),
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('video', 'regular', 'disc_image')),
            version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
            size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
            hash TEXT CHECK (hash ~ '^[0-9a-f]{64}$'),
            modified_at TIMESTAMPTZ,
            state TEXT NOT NULL DEFAULT 'staged' CHECK (state IN (
                'staged', 'transcoding', 'transcoded', 'archiving', 'archived', 'duplicate', 'failed', 'unreadable')),
            storage TEXT CHECK (storage IN ('staging', 'archive')),
            storage_key TEXT,
            signed_download_url TEXT,
            signed_download_url_expires_at TIMESTAMPTZ,
            duplicate_of BIGINT REFERENCES ObjectStorageFiles (id),
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
            run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
            lease_owner UUID,
            lease_token BIGINT NOT NULL DEFAULT 0,
            lease_expires_at TIMESTAMPTZ,
            error TEXT,
            archive_key TEXT,
            bundle_id BIGINT REFERENCES bundles (id),
            bundle_offset BIGINT CHECK (bundle_offset >= 0),
            stored_size_bytes BIGINT CHECK (stored_size_bytes >= 0),
            stored_hash TEXT CHECK (stored_hash ~ '^[0-9a-f]{64}$'),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            archived_at TIMESTAMPTZ,
            UNIQUE (source_id, path, version),
            CHECK (hash IS NOT NULL OR state = 'unreadable'),
            CHECK (state <> 'duplicate' OR duplicate_of IS NOT NULL),
            CHECK (state NOT IN ('transcoding', 'archiving') OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
            CHECK (state <> 'archived' OR (archive_key IS NOT NULL AND archived_at IS NOT NULL)),
            CHECK (bundle_id IS NULL OR bundle_offset IS NOT NULL)
        )
        """,
        // The workers' claim: the oldest runnable rows of one state (and kind), skipping locked ones.
        """
        CREATE INDEX objectstoragefiles_claim_idx ON ObjectStorageFiles (state, kind, run_after, id)
            WHERE state IN ('staged', 'transcoded')
        """,
        // Expired leases are re-claimed by any worker.
        """
        CREATE INDEX objectstoragefiles_lease_idx ON ObjectStorageFiles (lease_expires_at)
            WHERE state IN ('transcoding', 'archiving')
        """,
        // Status page aggregates by state and by source, answered from the index alone.
        "CREATE INDEX objectstoragefiles_state_idx ON ObjectStorageFiles (state) INCLUDE (size_bytes, stored_size_bytes)",
        "CREATE INDEX objectstoragefiles_source_state_idx ON ObjectStorageFiles (source_id, state) INCLUDE (size_bytes, stored_size_bytes)",
        "CREATE INDEX objectstoragefiles_archived_at_idx ON ObjectStorageFiles (archived_at) INCLUDE (size_bytes, stored_size_bytes) WHERE archived_at IS NOT NULL",
        "CREATE INDEX objectstoragefiles_failed_idx ON ObjectStorageFiles (updated_at DESC) WHERE state IN ('failed', 'unreadable')",
        // Dedupe: same size first, then same hash.
        "CREATE INDEX objectstoragefiles_hash_idx ON ObjectStorageFiles (hash)",
        "CREATE INDEX objectstoragefiles_size_idx ON ObjectStorageFiles (size_bytes)",
        "CREATE INDEX objectstoragefiles_bundle_idx ON ObjectStorageFiles (bundle_id) WHERE bundle_id IS NOT NULL",
        """
        CREATE FUNCTION objectstoragefiles_touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END
        $$
        """,
        """
        CREATE TRIGGER objectstoragefiles_touch BEFORE UPDATE ON ObjectStorageFiles
            FOR EACH ROW EXECUTE FUNCTION objectstoragefiles_touch()
        """,
        """
        CREATE TABLE ObjectStorageDeleteLog (
            id BIGSERIAL PRIMARY KEY,
            file_id BIGINT NOT NULL REFERENCES ObjectStorageFiles (id),
            requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            processed_at TIMESTAMPTZ,
            outcome TEXT,
            CHECK (processed_at IS NULL OR processed_at >= requested_at)
        )
        """,
        "CREATE INDEX objectstoragedeletelog_pending_idx ON ObjectStorageDeleteLog (requested_at) WHERE processed_at IS NULL",
        "CREATE INDEX objectstoragedeletelog_file_idx ON ObjectStorageDeleteLog (file_id)",
        // The delete log is history: rows are processed, never removed.
        """
        CREATE FUNCTION objectstoragedeletelog_keep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ObjectStorageDeleteLog rows are never deleted; set processed_at instead';
        END
        $$
        """,
        """
        CREATE TRIGGER objectstoragedeletelog_keep BEFORE DELETE OR TRUNCATE ON ObjectStorageDeleteLog
            FOR EACH STATEMENT EXECUTE FUNCTION objectstoragedeletelog_keep()
        """,
    ])

    /// What the uploader needs to resume and to explain itself.
    static let ingestBookkeeping = Migration(version: 2, name: "ingest bookkeeping", statements: [
        // Kind-specific facts (disc-image rescue map, transcode settings, classification) without a column each.
        "ALTER TABLE ObjectStorageFiles ADD COLUMN details JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')",
        // The file's content is incomplete (a disc image with unreadable sectors): never to be shown as clean.
        "ALTER TABLE ObjectStorageFiles ADD COLUMN degraded BOOLEAN NOT NULL DEFAULT false",
        // An upload that started but has no catalog row yet: its staging key and multipart progress, so that a
        // restarted uploader resumes it (only the missing parts are sent) instead of starting over or leaking it.
        """
        CREATE TABLE pending_uploads (
            id BIGSERIAL PRIMARY KEY,
            source_id BIGINT NOT NULL REFERENCES sources (id),
            path TEXT NOT NULL,
            size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
            modified_at TIMESTAMPTZ,
            staging_key TEXT NOT NULL UNIQUE,
            multipart_state JSONB,
            started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            UNIQUE (source_id, path)
        )
        """,
        // Names that are not valid UTF-8 (old discs with Latin-1 or Shift-JIS names): `path` holds a readable
        // form with \xNN escapes, `raw_path` the exact bytes that restore writes back.
        "ALTER TABLE ObjectStorageFiles ADD COLUMN raw_path BYTEA",
    ])

    /// The workers' queue: a leased row remembers the state it was claimed from, so that an expired lease can be
    /// re-claimed into the same step (a transcoded video and a staged document both become `archiving`).
    static let workQueue = Migration(version: 3, name: "work queue", statements: [
        """
        ALTER TABLE ObjectStorageFiles ADD COLUMN lease_from_state TEXT
            CHECK (lease_from_state IS NULL OR lease_from_state IN ('staged', 'transcoded'))
        """,
        """
        ALTER TABLE ObjectStorageFiles ADD CONSTRAINT objectstoragefiles_lease_from_check
            CHECK (state NOT IN ('transcoding', 'archiving') OR lease_from_state IS NOT NULL)
        """,
    ])

    /// What the archiver and the watchdog keep: objects waiting to be removed, dead bytes in bundles,
    /// deleted files, and alerts sent once per event.
    static let archiveAndAlerts = Migration(version: 4, name: "archiver and alerts", statements: [
        // An outbox of objects to remove: written in the transaction that makes them unneeded (a file archived,
        // a delete processed), emptied once the object is gone, so a crash between the two leaves a to-do item
        // rather than an orphan.
        """
        CREATE TABLE pending_object_deletes (
            area TEXT NOT NULL CHECK (area IN ('staging', 'archive')),
            storage_key TEXT NOT NULL,
            file_id BIGINT REFERENCES ObjectStorageFiles (id),
            reason TEXT NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (area, storage_key)
        )
        """,
        // Finding the rows that still use a staging object before it is removed.
        "CREATE INDEX objectstoragefiles_storage_key_idx ON ObjectStorageFiles (storage_key) WHERE storage_key IS NOT NULL",
        // A bundle whose data is mostly dead (deleted members) is rewritten; dead_bytes says how much.
        "ALTER TABLE bundles ADD COLUMN dead_bytes BIGINT NOT NULL DEFAULT 0 CHECK (dead_bytes >= 0)",
        "ALTER TABLE bundles ADD COLUMN dead_members INTEGER NOT NULL DEFAULT 0 CHECK (dead_members >= 0)",
        // The worker writing an `uploading` bundle; a bundle left `uploading` by a dead worker is an orphan.
        "ALTER TABLE bundles ADD COLUMN owner UUID",
        "ALTER TABLE bundles ADD COLUMN details JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')",
        "CREATE INDEX bundles_uploading_idx ON bundles (created_at) WHERE state IN ('open', 'uploading', 'rewriting')",
        // A processed delete request: the row stays as history; its data is gone (or was never needed).
        "ALTER TABLE ObjectStorageFiles ADD COLUMN deleted_at TIMESTAMPTZ",
        // One row per event (`worker-dead:<id>`, `file-failed:<id>`, `source-archived:<id>`…): the unique key
        // is what keeps several watchdogs, or one restarted, from sending the same alert twice.
        """
        CREATE TABLE alerts (
            id BIGSERIAL PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            details JSONB NOT NULL DEFAULT '{}',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            delivered_at TIMESTAMPTZ,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_error TEXT
        )
        """,
        "CREATE INDEX alerts_undelivered_idx ON alerts (next_attempt_at) WHERE delivered_at IS NULL",
    ])

    /// What `uploader restore` and `uploader verify` remember between runs.
    static let restoreAndVerify = Migration(version: 5, name: "restore requests and verification", statements: [
        // Each restore request costs money and takes hours: one row per archive object, so a later run (or
        // `restore-status`) knows what is in flight and when it should be ready, without asking twice.
        """
        CREATE TABLE restore_requests (
            archive_key TEXT PRIMARY KEY,
            tier TEXT NOT NULL CHECK (tier IN ('Standard', 'Bulk', 'Expedited')),
            days INTEGER NOT NULL CHECK (days >= 1),
            storage_class TEXT,
            size_bytes BIGINT CHECK (size_bytes >= 0),
            requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expected_ready_at TIMESTAMPTZ NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready', 'expired')),
            ready_at TIMESTAMPTZ,
            restored_until TIMESTAMPTZ,
            checked_at TIMESTAMPTZ,
            requested_for TEXT
        )
        """,
        "CREATE INDEX restore_requests_pending_idx ON restore_requests (expected_ready_at) WHERE state = 'pending'",
        // The rolling verification: the objects checked longest ago go first, so every object is covered over time.
        """
        CREATE TABLE archive_verifications (
            archive_key TEXT PRIMARY KEY,
            verified_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'size_only', 'failed')),
            detail TEXT
        )
        """,
    ])

    /// Every claim that took a row over from an expired lease, written by the claim itself, so that the watchdog
    /// reports re-claimed jobs without having to watch them change hands (a restarted status server, or a job
    /// re-claimed and finished between two of its passes, would otherwise go unreported).
    static let leaseTakeovers = Migration(version: 6, name: "lease takeovers", statements: [
        """
        CREATE TABLE lease_takeovers (
            id BIGSERIAL PRIMARY KEY,
            file_id BIGINT NOT NULL REFERENCES ObjectStorageFiles (id),
            previous_owner UUID NOT NULL,
            new_owner UUID NOT NULL,
            lease_token BIGINT NOT NULL,
            taken_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX lease_takeovers_taken_at_idx ON lease_takeovers (taken_at)",
    ])

    /// What keeps "archived" true: the row holding a duplicate's content is found however long the chain
    /// (`content_holder`), and a rewritten bundle is kept (`replaced`) until every member it held is archived
    /// again, instead of being removed as soon as its members were copied back to staging.
    static let contentHolders = Migration(version: 7, name: "content holders and replaced bundles", statements: [
        """
        CREATE FUNCTION content_holder(start_id BIGINT) RETURNS BIGINT LANGUAGE sql STABLE AS $$
            WITH RECURSIVE chain (id, state, duplicate_of) AS (
                SELECT id, state, duplicate_of FROM objectstoragefiles WHERE id = start_id
                UNION
                SELECT h.id, h.state, h.duplicate_of FROM chain c JOIN objectstoragefiles h ON h.id = c.duplicate_of
                WHERE c.state = 'duplicate'
            )
            SELECT id FROM chain WHERE state <> 'duplicate' LIMIT 1
        $$
        """,
        "ALTER TABLE bundles DROP CONSTRAINT bundles_state_check",
        "ALTER TABLE bundles ADD CONSTRAINT bundles_state_check CHECK (state IN ('open', 'uploading', 'archived', 'rewriting', 'replaced', 'deleted'))",
        "ALTER TABLE ObjectStorageFiles ADD COLUMN rewritten_from_bundle BIGINT REFERENCES bundles (id)",
        "CREATE INDEX objectstoragefiles_rewritten_idx ON ObjectStorageFiles (rewritten_from_bundle) WHERE rewritten_from_bundle IS NOT NULL",
        // The delete processor counts a holder's live duplicates; without this it scans the whole table.
        "CREATE INDEX objectstoragefiles_duplicate_of_idx ON ObjectStorageFiles (duplicate_of) WHERE duplicate_of IS NOT NULL",
    ])

    /// What kept the last upload run of a source from seeing all of it: a directory that could not be opened or
    /// listed to the end, an entry that could not be inspected. Replaced at the end of every run of the source
    /// (a complete run leaves none); while a source has any, nothing calls it archived.
    static let walkProblems = Migration(version: 8, name: "walk problems", statements: [
        """
        CREATE TABLE source_problems (
            id BIGSERIAL PRIMARY KEY,
            source_id BIGINT NOT NULL REFERENCES sources (id),
            path TEXT NOT NULL,
            raw_path BYTEA,
            problem TEXT NOT NULL CHECK (problem <> ''),
            seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX source_problems_source_idx ON source_problems (source_id, path)",
    ])

    /// A source whose raw videos are archived as they are, each with its transcode beside it as a row of its own
    /// (`details.transcode_of` names the raw row). Once on, it stays on: a later upload cannot turn it off.
    static let keepRaw = Migration(version: 9, name: "keep raw videos per source", statements: [
        "ALTER TABLE sources ADD COLUMN keep_raw BOOLEAN NOT NULL DEFAULT false",
    ])

    /// A source encrypted on the client (age): how, to whom, and its keys wrapped for the identity holder
    /// (`Upload.SourceEncryptionRecord`'s JSON). Set once, before the source holds any file; never removed.
    static let sourceEncryption = Migration(version: 10, name: "source encryption", statements: [
        "ALTER TABLE sources ADD COLUMN encryption JSONB CHECK (encryption IS NULL OR jsonb_typeof(encryption) = 'object')",
        "CREATE INDEX sources_recipients_idx ON sources ((encryption->>'recipients_fingerprint')) WHERE encryption IS NOT NULL",
    ])

    /// Each finished run over a source is a snapshot: the paths that were there and the version each had.
    /// Stored as changes (restic's parent snapshot, git's index): a snapshot records only the paths whose version
    /// differs from the source's previous finished snapshot: a new or changed file (`file_id` its row), one that
    /// came back, or one gone (`file_id` NULL). `snapshot_files(source, n)` is the whole set. Sources catalogued
    /// before this migration get snapshot 1 with the newest version of every path.
    static let snapshots = Migration(version: 11, name: "snapshots", statements: [
        """
        CREATE TABLE snapshots (
            id BIGSERIAL PRIMARY KEY,
            source_id BIGINT NOT NULL REFERENCES sources(id),
            number INT NOT NULL CHECK (number > 0),
            started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            finished_at TIMESTAMPTZ,
            complete BOOLEAN NOT NULL DEFAULT true,
            files BIGINT NOT NULL DEFAULT 0,
            bytes BIGINT NOT NULL DEFAULT 0,
            files_changed BIGINT NOT NULL DEFAULT 0,
            files_gone BIGINT NOT NULL DEFAULT 0,
            bytes_uploaded BIGINT NOT NULL DEFAULT 0,
            UNIQUE (source_id, number)
        )
        """,
        """
        CREATE TABLE snapshot_changes (
            snapshot_id BIGINT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            file_id BIGINT REFERENCES objectstoragefiles(id),
            PRIMARY KEY (snapshot_id, path)
        )
        """,
        "CREATE INDEX snapshot_changes_file_idx ON snapshot_changes (file_id) WHERE file_id IS NOT NULL",
        """
        CREATE FUNCTION snapshot_files(p_source BIGINT, p_number INT) RETURNS TABLE (path TEXT, file_id BIGINT)
        LANGUAGE sql STABLE AS $$
            SELECT m.path, m.file_id FROM (
                SELECT DISTINCT ON (c.path) c.path, c.file_id
                FROM snapshot_changes c JOIN snapshots s ON s.id = c.snapshot_id
                WHERE s.source_id = p_source AND s.number <= p_number AND s.finished_at IS NOT NULL
                ORDER BY c.path, s.number DESC
            ) m WHERE m.file_id IS NOT NULL
        $$
        """,
        """
        INSERT INTO snapshots (source_id, number, started_at, finished_at)
        SELECT s.id, 1, s.started_at, coalesce(s.finished_at, now()) FROM sources s
        WHERE EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = s.id)
        """,
        """
        INSERT INTO snapshot_changes (snapshot_id, path, file_id)
        SELECT DISTINCT ON (f.source_id, f.path) n.id, f.path, f.id
        FROM objectstoragefiles f JOIN snapshots n ON n.source_id = f.source_id AND n.number = 1
        WHERE f.deleted_at IS NULL
        ORDER BY f.source_id, f.path, f.version DESC
        """,
        """
        UPDATE snapshots n SET files = t.files, bytes = t.bytes, files_changed = t.files
        FROM (SELECT c.snapshot_id, count(*) AS files, coalesce(sum(f.size_bytes), 0) AS bytes
              FROM snapshot_changes c JOIN objectstoragefiles f ON f.id = c.file_id GROUP BY c.snapshot_id) t
        WHERE t.snapshot_id = n.id
        """,
    ])

    /// How fast a source reads back: `cold` (the archive class, Deep Archive by default) or `warm` (a class that reads
    /// back at once, in smaller bundles). Chosen with the source's first files and then fixed (`--tier`). Version 12
    /// (after snapshots, 11).
    static let sourceTier = Migration(version: 12, name: "source tier", statements: [
        "ALTER TABLE sources ADD COLUMN tier TEXT NOT NULL DEFAULT 'cold' CHECK (tier IN ('cold', 'warm'))",
    ])

    /// A local spool (`uploader upload --spool DIR`): files read at disc speed into a directory and sent to staging
    /// later by `uploader send`. A spooled row names its spool (`spool_id`, the UUID in the spool's identity file,
    /// so that several machines' spools are told apart) and its file there (`storage = 'spool'`, `storage_key`: the
    /// same key it gets in staging). `send_state` is the sender's multipart journal, so a killed sender's successor
    /// sends only the missing parts. `spools` lists the spools seen and what their sender last said.
    static let spool = Migration(version: 13, name: "spool", statements: [
        "ALTER TABLE ObjectStorageFiles DROP CONSTRAINT objectstoragefiles_state_check",
        """
        ALTER TABLE ObjectStorageFiles ADD CONSTRAINT objectstoragefiles_state_check CHECK (state IN (
            'spooled', 'staged', 'transcoding', 'transcoded', 'archiving', 'archived', 'duplicate', 'failed', 'unreadable'))
        """,
        "ALTER TABLE ObjectStorageFiles DROP CONSTRAINT objectstoragefiles_storage_check",
        "ALTER TABLE ObjectStorageFiles ADD CONSTRAINT objectstoragefiles_storage_check CHECK (storage IN ('spool', 'staging', 'archive'))",
        "ALTER TABLE ObjectStorageFiles ADD COLUMN spool_id UUID",
        "ALTER TABLE ObjectStorageFiles ADD COLUMN send_state JSONB",
        """
        ALTER TABLE ObjectStorageFiles ADD CONSTRAINT objectstoragefiles_spooled_check
            CHECK (state <> 'spooled' OR (spool_id IS NOT NULL AND storage = 'spool' AND storage_key IS NOT NULL))
        """,
        "CREATE INDEX objectstoragefiles_spooled_idx ON ObjectStorageFiles (spool_id, id) WHERE state = 'spooled'",
        """
        CREATE TABLE spools (
            id UUID PRIMARY KEY,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            sender_state TEXT,
            sender_detail TEXT,
            sender_updated_at TIMESTAMPTZ
        )
        """,
    ])
}
