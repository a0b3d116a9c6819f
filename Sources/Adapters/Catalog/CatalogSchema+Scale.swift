extension CatalogSchema {
    /// The archiver's sweep retires `replaced` bundles (rewritten, their members archived again) every minute; a
    /// query for them by state alone scanned every bundle, and almost every bundle is `archived` (one per few hundred
    /// archived files: 25,000 at 10,000,000 rows, 270 ms a sweep). Partial: only the few replaced bundles are in it.
    ///
    /// The migration's number may change when branches merge; its name says what it is.
    static let replacedBundles = Migration(version: 25, name: "replaced bundles index", statements: [
        "CREATE INDEX bundles_replaced_idx ON bundles (id) WHERE state = 'replaced'",
    ])

    /// The status page's "videos kept raw" (the count and the latest ten) read every row's details: a sequential
    /// scan, 1.7 s of each uncached status read at 10,000,000 rows. Partial, with the reader's own predicate: only
    /// those videos are in it, and every other row's update costs one predicate check.
    static let keptRawVideos = Migration(version: 26, name: "kept raw videos index", statements: [
        """
        CREATE INDEX objectstoragefiles_kept_raw_idx ON ObjectStorageFiles (updated_at DESC, id DESC)
            WHERE kind = 'video' AND deleted_at IS NULL AND (details ? 'kept_raw' OR details ? 'transcode_failed')
        """,
    ])

    /// The status page counts each encrypted source's videos that were not transcoded (an encrypted video is stored
    /// as it is) by reading every row of the source: 4.3 s in 21 uncached status reads at 10,000,000 rows. Partial:
    /// only those videos are in it.
    static let untranscodedVideos = Migration(version: 27, name: "untranscoded videos index", statements: [
        """
        CREATE INDEX objectstoragefiles_video_not_transcoded_idx ON ObjectStorageFiles (source_id)
            WHERE details ? 'video_not_transcoded' AND deleted_at IS NULL
        """,
    ])
}

extension CatalogSchema {
    /// `sources.catalog_epoch` (migration 14) was raised once per changed row: a statement that marks 100,000 of a
    /// source's rows deleted or failed updated the same `sources` row 100,000 times, and inside one transaction
    /// none of those row versions can be pruned, so every raise read all the versions before it (quadratic:
    /// `rebuild-catalog` spent 0.5 s per missing bundle at 200,000 rows). The token is compared for equality
    /// only, and a transaction's changes become visible together, so raising it once per transaction says the
    /// same. `catalog_epoch_xact` is the transaction that raised it last (`txid_current()`, the top-level id even
    /// in a subtransaction; a subtransaction rolled back takes its mark with it, so the next change raises again).
    static let epochOncePerTransaction = Migration(version: 28, name: "catalog epoch once per transaction", statements: [
        "ALTER TABLE sources ADD COLUMN catalog_epoch_xact BIGINT",
        """
        CREATE OR REPLACE FUNCTION raise_catalog_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                UPDATE sources SET catalog_epoch = catalog_epoch + 1, catalog_epoch_xact = txid_current();
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE sources SET catalog_epoch = catalog_epoch + 1, catalog_epoch_xact = txid_current()
                WHERE id = OLD.source_id AND catalog_epoch_xact IS DISTINCT FROM txid_current();
            ELSE
                UPDATE sources SET catalog_epoch = catalog_epoch + 1, catalog_epoch_xact = txid_current()
                WHERE id IN (OLD.source_id, NEW.source_id) AND catalog_epoch_xact IS DISTINCT FROM txid_current();
            END IF;
            RETURN NULL;
        END $$
        """,
        """
        CREATE OR REPLACE FUNCTION raise_catalog_epoch_for_delete_requests() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE sources SET catalog_epoch = catalog_epoch + 1, catalog_epoch_xact = txid_current()
            WHERE id IN (SELECT f.source_id FROM requested r JOIN ObjectStorageFiles f ON f.id = r.file_id)
              AND catalog_epoch_xact IS DISTINCT FROM txid_current();
            RETURN NULL;
        END $$
        """,
    ])
}
