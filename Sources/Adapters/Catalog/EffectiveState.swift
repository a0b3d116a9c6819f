/// A file's state as every progress report must see it (status page, `uploader sources`, the watchdog's "fully
/// archived", the pipeline's summary): a `duplicate` is done only when the row holding its content is archived
/// and not deleted. A duplicate of a file still on its way takes that file's state; one whose holder failed, is
/// unreadable, was deleted or is missing counts as `failed`.
///
/// An SQL expression over `f` (the file) and `h` (the row `f.duplicate_of` names, LEFT JOINed as
/// `h.id = f.duplicate_of AND f.state = 'duplicate'`). Dedupe keeps chains one step long (the delete processor
/// hands content over to a live duplicate), so `content_holder` — which follows a chain of any length — is only
/// asked when the first step is itself a duplicate.
public enum EffectiveState {
    public static let sql = """
        CASE WHEN f.state <> 'duplicate' THEN f.state
             ELSE coalesce((SELECT CASE WHEN c.deleted_at IS NOT NULL THEN 'failed' WHEN c.state = 'archived' THEN 'duplicate'
                                        WHEN c.state IN ('unreadable', 'failed') THEN 'failed' ELSE c.state END
                            FROM objectstoragefiles c
                            WHERE c.id = CASE WHEN h.state = 'duplicate' THEN content_holder(f.id) ELSE h.id END), 'failed')
        END
        """
    /// The join that `sql` expects.
    public static let holderJoin = "LEFT JOIN objectstoragefiles h ON h.id = f.duplicate_of AND f.state = 'duplicate'"
}
