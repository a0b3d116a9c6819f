-- The uploader's own PostgreSQL role: it may add sources and file rows and keep its upload journal and the paths
-- its runs could not read, and nothing else (no DELETE of other catalog rows, no DDL, no access to workers,
-- bundles or alerts; the delete log only read, so that a file whose deletion is pending is stored again when its
-- disc comes again instead of being called unchanged).
-- Run once as the master user (backup_admin), after the first deploy has created the tables, e.g. through the
-- bastion's forwarded port (docs/deploy.md):
--
--   psql "postgres://backup_admin@127.0.0.1:15432/backup?sslmode=verify-ca&sslrootcert=rds-global-bundle.pem" \
--        -v uploader_password="$UPLOADER_PASSWORD" -f infra/sql/uploader-role.sql
--
-- and again after a release whose migrations add tables the uploader writes (the statements are idempotent).

SELECT format('CREATE ROLE backup_uploader LOGIN PASSWORD %L', :'uploader_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'backup_uploader') \gexec
ALTER ROLE backup_uploader PASSWORD :'uploader_password';

GRANT CONNECT ON DATABASE backup TO backup_uploader;
GRANT USAGE ON SCHEMA public TO backup_uploader;

-- Every program checks the catalog's migrations at start (a read of schema_migrations; the table is created only
-- when missing), so the role needs no CREATE on the schema. A newer uploader whose migration has not been applied
-- yet stops with a permission error until the deploy's migrate task has run.
GRANT SELECT ON schema_migrations TO backup_uploader;

-- Sources (one row per disc), file rows (new versions, duplicates, re-sent failed content), the multipart
-- upload journal, the staging-delete outbox, and the paths a run could not read (each run replaces its source's).
GRANT SELECT, INSERT, UPDATE ON sources TO backup_uploader;
GRANT SELECT, INSERT, UPDATE ON objectstoragefiles TO backup_uploader;
GRANT SELECT, INSERT, UPDATE, DELETE ON pending_uploads TO backup_uploader;
GRANT SELECT, INSERT ON pending_object_deletes TO backup_uploader;
GRANT SELECT, INSERT, DELETE ON source_problems TO backup_uploader;
GRANT SELECT ON objectstoragedeletelog TO backup_uploader;
-- Each upload run is a snapshot: opened (an unfinished one left by a crash is dropped), then its changes written.
-- `uploader forget` releases versions through the delete log, which this role cannot write: run it as the owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON snapshots TO backup_uploader;
GRANT SELECT, INSERT ON snapshot_changes TO backup_uploader;
-- The local index checks that it belongs to this catalog (its identity) before it trusts anything.
GRANT SELECT ON catalog_identity TO backup_uploader;
-- `upload --spool` registers its spool; `uploader send` records its state there (sending, paused, offline).
GRANT SELECT, INSERT, UPDATE ON spools TO backup_uploader;
-- `upload --owner USER` (or the default owner) looks the user up by name and records it on the source: the user's id,
-- name and whether disabled, never the password hash (column grants); sessions and API tokens not at all.
-- `uploader users …` writes users and tokens: run it as the owner, not with this role.
GRANT SELECT (id, name, disabled_at) ON users TO backup_uploader;
-- `uploader audit` records each source's verdict for the family pages ("safe to destroy the original?").
GRANT SELECT, INSERT ON source_audits TO backup_uploader;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO backup_uploader;
