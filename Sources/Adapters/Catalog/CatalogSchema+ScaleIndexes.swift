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
