-- Grows the catalog with synthetic rows :first..:last (psql -v first=… -v last=…), in sources of 2,000 rows:
-- in each source 100 paths with three versions, a dedupe chain every 100 rows (three duplicates of one archived
-- row), 1 in 2,000 failed, 1 in 10,000 unreadable, the rest archived (small files in bundles of 400, videos alone).
-- Every row is in a final state, so no worker claims a synthetic row; ids start at 10^9 so the real rows the bench
-- uploads keep the sequence's ids. Run with the table's secondary indexes dropped (bench/scale/run rebuilds them).
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO sources (id, label, metadata, started_at, finished_at, files_seen, bytes_seen)
SELECT 1000000 + s, 'synthetic ' || s, jsonb_build_object('box', s / 50), now() - interval '400 days' + s * interval '1 minute',
       now() - interval '400 days' + s * interval '1 minute' + interval '20 minutes', 2000, 2000 * 300000
FROM generate_series((:first - 1) / 2000, (:last - 1) / 2000) AS s
ON CONFLICT (id) DO NOTHING;

INSERT INTO bundles (id, archive_key, state, member_count, raw_bytes, stored_bytes, archived_at)
SELECT 1000000000 + b, 'bundles/synthetic-' || b || '.tar.zst', 'archived', 400, 400 * 30000, 300 * 30000,
       now() - interval '300 days'
FROM generate_series(:first / 400, :last / 400) AS b
ON CONFLICT (id) DO NOTHING;

INSERT INTO objectstoragefiles (id, source_id, name, path, version, kind, size_bytes, hash, modified_at, state, storage,
                                storage_key, archive_key, archived_at, bundle_id, bundle_offset, stored_size_bytes,
                                duplicate_of, error, attempts)
SELECT 1000000000 + n, 1000000 + (n - 1) / 2000,
       CASE WHEN k < 300 THEN 'v' || (k / 3) || '.txt' ELSE 'f' || n || CASE WHEN video THEN '.dv' ELSE '.txt' END END,
       CASE WHEN k < 300 THEN 'docs/v' || (k / 3) || '.txt' ELSE 'dir' || (k % 50) || '/f' || n || CASE WHEN video THEN '.dv' ELSE '.txt' END END,
       CASE WHEN k < 300 THEN k % 3 + 1 ELSE 1 END,
       CASE WHEN video THEN 'video' ELSE 'regular' END,
       CASE WHEN video THEN 200000000 + (n * 7919) % 800000000 ELSE 1000 + (n * 104729) % 60000 END,
       CASE WHEN st = 'unreadable' THEN NULL
            WHEN st = 'duplicate' THEN md5((n - 3)::text) || md5((n - 2)::text)
            ELSE md5(n::text) || md5((n + 1)::text) END,
       now() - interval '2000 days' + (n % 100000) * interval '1 minute',
       st,
       CASE WHEN st = 'archived' THEN 'archive' WHEN st IN ('failed') THEN 'staging' END,
       CASE WHEN st = 'archived' THEN CASE WHEN video THEN 'files/' || n ELSE 'bundles/synthetic-' || (n / 400) || '.tar.zst' END
            WHEN st = 'failed' THEN 'sources/' || n END,
       CASE WHEN st = 'archived' THEN CASE WHEN video THEN 'files/' || n ELSE 'bundles/synthetic-' || (n / 400) || '.tar.zst' END END,
       CASE WHEN st = 'archived' THEN now() - interval '300 days' END,
       CASE WHEN st = 'archived' AND NOT video THEN 1000000000 + n / 400 END,
       CASE WHEN st = 'archived' AND NOT video THEN (n % 400) * 30000 END,
       CASE WHEN st = 'archived' AND video THEN 60000000 + n % 1000 END,
       CASE WHEN st = 'duplicate' THEN 1000000000 + n - 3 END,
       CASE WHEN st = 'failed' THEN 'transcode failed: Invalid data found when processing input'
            WHEN st = 'unreadable' THEN 'read failed: Input/output error' END,
       CASE WHEN st = 'failed' THEN 5 ELSE 1 END
FROM (
    SELECT n, (n - 1) % 2000 AS k, n % 20 = 7 AS video,
           CASE WHEN n % 100 IN (85, 86, 87) AND (n - 1) % 2000 >= 300 THEN 'duplicate'
                WHEN n % 2000 = 1998 THEN 'failed'
                WHEN n % 10000 = 9999 THEN 'unreadable'
                ELSE 'archived' END AS st
    FROM generate_series(:first::bigint, :last::bigint) AS n
) AS g;
COMMIT;
