extension CatalogSchema {
    /// What the uploader's local per-source index (`Upload/LocalIndex`) checks before it trusts itself, in one query:
    ///
    /// - `catalog_identity`: one random UUID made with the catalog. A different database, or a catalog rebuilt into
    ///   an empty one (`rebuild-catalog`), has another, so an index made against the old one is never found.
    /// - `sources.catalog_epoch`: raised by triggers whenever something could change what the uploader's look-up
    ///   answers for a path of the source *other than a new row* (new rows are seen by the row count): a row deleted,
    ///   moved to another path, version or source, marked deleted or asked to be deleted (`ObjectStorageDeleteLog`),
    ///   or a row that held content becoming `failed` or `unreadable` or changing size, time or hash. The workers'
    ///   ordinary transitions (staged → archiving → archived) leave it alone, so an index survives archiving.
    ///
    /// Version 14: the local spool work in progress elsewhere takes 13.
    static let uploadIndexToken = Migration(version: 14, name: "upload index token", statements: [
        """
        CREATE TABLE catalog_identity (
            only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
            id UUID NOT NULL DEFAULT gen_random_uuid(),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "INSERT INTO catalog_identity DEFAULT VALUES",
        "ALTER TABLE sources ADD COLUMN catalog_epoch BIGINT NOT NULL DEFAULT 0",
        """
        CREATE FUNCTION raise_catalog_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                UPDATE sources SET catalog_epoch = catalog_epoch + 1;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE sources SET catalog_epoch = catalog_epoch + 1 WHERE id = OLD.source_id;
            ELSE
                UPDATE sources SET catalog_epoch = catalog_epoch + 1 WHERE id IN (OLD.source_id, NEW.source_id);
            END IF;
            RETURN NULL;
        END $$
        """,
        """
        CREATE TRIGGER objectstoragefiles_epoch_update
        AFTER UPDATE OF source_id, path, version, size_bytes, modified_at, hash, state, deleted_at ON ObjectStorageFiles
        FOR EACH ROW WHEN (
            OLD.source_id IS DISTINCT FROM NEW.source_id OR OLD.path IS DISTINCT FROM NEW.path
            OR OLD.version IS DISTINCT FROM NEW.version OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
            OR (OLD.state NOT IN ('failed', 'unreadable') AND (
                NEW.state IN ('failed', 'unreadable') OR OLD.size_bytes IS DISTINCT FROM NEW.size_bytes
                OR OLD.modified_at IS DISTINCT FROM NEW.modified_at OR OLD.hash IS DISTINCT FROM NEW.hash)))
        EXECUTE FUNCTION raise_catalog_epoch()
        """,
        "CREATE TRIGGER objectstoragefiles_epoch_delete AFTER DELETE ON ObjectStorageFiles FOR EACH ROW EXECUTE FUNCTION raise_catalog_epoch()",
        "CREATE TRIGGER objectstoragefiles_epoch_truncate AFTER TRUNCATE ON ObjectStorageFiles FOR EACH STATEMENT EXECUTE FUNCTION raise_catalog_epoch()",
        """
        CREATE FUNCTION raise_catalog_epoch_for_delete_requests() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE sources SET catalog_epoch = catalog_epoch + 1
            WHERE id IN (SELECT f.source_id FROM requested r JOIN ObjectStorageFiles f ON f.id = r.file_id);
            RETURN NULL;
        END $$
        """,
        """
        CREATE TRIGGER objectstoragedeletelog_epoch AFTER INSERT ON ObjectStorageDeleteLog
        REFERENCING NEW TABLE AS requested FOR EACH STATEMENT EXECUTE FUNCTION raise_catalog_epoch_for_delete_requests()
        """,
    ])
}
