extension CatalogSchema {
    /// `uploader audit`'s verdicts, one row per source per run (history: a verdict is never overwritten).
    static let sourceAudits = Migration(version: 18, name: "source audits", statements: [
        """
        CREATE TABLE source_audits (
            id BIGSERIAL PRIMARY KEY,
            source_id BIGINT NOT NULL REFERENCES sources (id),
            checked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            safe BOOLEAN NOT NULL,
            files INTEGER NOT NULL CHECK (files >= 0),
            content_verified INTEGER NOT NULL CHECK (content_verified >= 0),
            size_checked INTEGER NOT NULL CHECK (size_checked >= 0),
            problem_count INTEGER NOT NULL CHECK (problem_count >= 0),
            problems JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(problems) = 'array')
        )
        """,
        "CREATE INDEX source_audits_source_idx ON source_audits (source_id, checked_at DESC)",
    ])
}
