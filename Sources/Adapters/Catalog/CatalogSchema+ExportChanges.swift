extension CatalogSchema {
    /// The catalog export in the archive bucket, kept up to date by writing only what changed (issue 25): every
    /// exported table gets `export_xid`, the id of the transaction that last wrote the row (set on insert by its
    /// default and on update by a trigger, so no statement can forget it), with an index. An export taken in one
    /// snapshot S writes the rows with `export_xid >= xmin` of the previous export's snapshot: a transaction below
    /// that xmin had finished before the previous snapshot, so whatever it wrote was in the previous export already.
    /// Rows are never deleted from these tables (deletes are marked), so changed rows are the whole difference.
    ///
    /// `catalog_exports` (one row) is the exports' bookkeeping: the last number handed out (each attempt gets its
    /// own, committed before it starts), and the last export known to be in the bucket, whole (`base_*`) and any
    /// (`done_*`). Rows from before this migration have no `export_xid`; the first export after it is whole.
    static let exportChanges = Migration(version: 15, name: "incremental catalog export", statements: [
        """
        CREATE FUNCTION stamp_export_xid() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.export_xid := pg_current_xact_id();
            RETURN NEW;
        END $$
        """,
    ] + ["sources", "bundles", "ObjectStorageFiles", "ObjectStorageDeleteLog"].flatMap { table in
        [
            // Added without a default first, then the default set: no rewrite of a large table.
            "ALTER TABLE \(table) ADD COLUMN export_xid xid8",
            "ALTER TABLE \(table) ALTER COLUMN export_xid SET DEFAULT pg_current_xact_id()",
            "CREATE TRIGGER \(table.lowercased())_export_xid BEFORE UPDATE ON \(table) FOR EACH ROW EXECUTE FUNCTION stamp_export_xid()",
            "CREATE INDEX \(table.lowercased())_export_xid_idx ON \(table) (export_xid)",
        ]
    } + [
        """
        CREATE TABLE catalog_exports (
            only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
            last_number BIGINT NOT NULL DEFAULT 0,
            base_number BIGINT,
            base_rows BIGINT NOT NULL DEFAULT 0,
            done_number BIGINT,
            done_xmin xid8,
            rows_since_base BIGINT NOT NULL DEFAULT 0,
            changes_since_base INT NOT NULL DEFAULT 0
        )
        """,
        "INSERT INTO catalog_exports DEFAULT VALUES",
    ])
}
