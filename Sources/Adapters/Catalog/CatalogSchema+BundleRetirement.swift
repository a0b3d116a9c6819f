extension CatalogSchema {
    /// The archiver's sweep retires `replaced` bundles (rewritten, their members archived again) every minute; a
    /// query for them by state alone scanned every bundle, and almost every bundle is `archived` (one per few hundred
    /// archived files: 25,000 at 10,000,000 rows, 270 ms a sweep). Partial: only the few replaced bundles are in it.
    ///
    /// The migration's number may change when branches merge; its name says what it is.
    static let replacedBundles = Migration(version: 25, name: "replaced bundles index", statements: [
        "CREATE INDEX bundles_replaced_idx ON bundles (id) WHERE state = 'replaced'",
    ])
}
