extension CatalogSchema {
    /// The spool sender's sweeps and the staging sweep of orphaned image maps ask, for a list of keys, which ones a
    /// row names. `storage_key` has had a partial index since migration 4 (`objectstoragefiles_storage_key_idx`, which
    /// `storage_key = ANY(…)` uses), but a disc image's map is named inside `details` (`rescue_map_key`), and that
    /// branch scanned the whole table on every sweep. Partial: only disc images carry the key, so the index is tiny;
    /// `details->>'rescue_map_key' = ANY(…)` implies its predicate, so the planner can use it.
    static let rescueMapKeys = Migration(version: 21, name: "rescue map key index", statements: [
        """
        CREATE INDEX objectstoragefiles_rescue_map_key_idx ON ObjectStorageFiles ((details->>'rescue_map_key'))
            WHERE (details->>'rescue_map_key') IS NOT NULL
        """,
    ])
}
