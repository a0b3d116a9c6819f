-- Fills a migrated, empty catalog with :rows ObjectStorageFiles rows spread over 50 sources, plus workers,
-- bundles and a realistic mix of states (85 % archived, 3 % duplicates, the rest waiting, in flight, failed or
-- unreadable), archived over the last 30 days. Used by bench/status/run; psql -v rows=1000000 -f fill.sql
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO sources (label, metadata, started_at, finished_at, files_seen, bytes_seen)
SELECT 'Disc ' || s, jsonb_build_object('year', 2000 + s % 20, 'box', s / 10), now() - interval '31 days' + s * interval '12 hours',
       CASE WHEN s < 48 THEN now() - interval '30 days' + s * interval '12 hours' END, 0, 0
FROM generate_series(1, 50) AS s;

INSERT INTO workers (id, role, host, pid, version, started_at, heartbeat_at, stopped_at, stop_reason)
SELECT gen_random_uuid(), CASE WHEN w % 2 = 0 THEN 'archiver' ELSE 'transcoder' END, 'task-' || w, 1000 + w, '0.1.0',
       now() - interval '1 day', CASE WHEN w <= 16 THEN now() - interval '2 seconds' ELSE now() - w * interval '10 minutes' END,
       CASE WHEN w > 18 THEN now() - interval '5 minutes' END, CASE WHEN w > 18 THEN 'finished' END
FROM generate_series(1, 20) AS w;

INSERT INTO bundles (archive_key, state, member_count, raw_bytes, stored_bytes, archived_at)
SELECT 'bundles/' || b || '.tar.zst', 'archived', 400, 800000000, 560000000, now() - interval '30 days' + b * interval '20 minutes'
FROM generate_series(1, 2000) AS b;

INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key,
                                archive_key, archived_at, stored_size_bytes, duplicate_of, error, attempts)
SELECT 1 + n % 50, 'f' || n, 'dir' || (n % 1000) || '/f' || n,
       CASE WHEN n % 20 = 0 THEN 'video' ELSE 'regular' END,
       CASE WHEN n % 20 = 0 THEN 200000000 + (n::bigint * 7919) % 800000000 ELSE 1000 + (n::bigint * 104729) % 5000000 END,
       CASE WHEN st = 'unreadable' THEN NULL ELSE md5(n::text) || md5((n + 1)::text) END,
       st,
       CASE WHEN st = 'archived' THEN 'archive' WHEN st = 'unreadable' THEN NULL ELSE 'staging' END,
       CASE WHEN st = 'unreadable' THEN NULL ELSE 'sources/' || n END,
       CASE WHEN st = 'archived' THEN 'archive/' || n END,
       CASE WHEN st = 'archived' THEN now() - interval '30 days' + (n::float8 / :rows) * interval '30 days' END,
       CASE WHEN st = 'archived' AND n % 20 = 0 THEN 60000000 + n % 1000 END,
       CASE WHEN st = 'duplicate' THEN 1 END,
       CASE WHEN st = 'failed' THEN 'transcode failed: Invalid data found when processing input'
            WHEN st = 'unreadable' THEN 'read failed: Input/output error' END,
       CASE WHEN st = 'failed' THEN 5 WHEN st = 'archived' THEN 1 ELSE 0 END
FROM (
    SELECT n, CASE
        WHEN n = 1 THEN 'archived'
        WHEN n % 100 < 85 THEN 'archived'
        WHEN n % 100 < 88 THEN 'duplicate'
        WHEN n % 100 = 96 THEN 'transcoded'
        WHEN n % 2000 = 98 THEN 'failed'
        WHEN n % 10000 = 99 THEN 'unreadable'
        ELSE 'staged' END AS st
    FROM generate_series(1, :rows) AS n
) AS g;

-- A few hundred rows held by live workers.
UPDATE objectstoragefiles SET state = 'archiving', lease_owner = (SELECT id FROM workers WHERE host = 'task-2'),
       lease_expires_at = now() + interval '30 seconds', lease_from_state = 'staged', attempts = 1
WHERE id IN (SELECT id FROM objectstoragefiles WHERE state = 'staged' ORDER BY id LIMIT 200);

UPDATE sources s SET files_seen = c.files, bytes_seen = c.bytes
FROM (SELECT source_id, count(*) AS files, sum(size_bytes) AS bytes FROM objectstoragefiles GROUP BY source_id) AS c
WHERE c.source_id = s.id;
COMMIT;
VACUUM ANALYZE;
