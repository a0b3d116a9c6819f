-- Fills a migrated catalog that holds the bench's users (m01 … m20, by id) with :rows ObjectStorageFiles rows in
-- 100 sources, 'Disc 1' … 'Disc 100', five per user (Disc s belongs to the ((s - 1) % 20 + 1)-th user): 'Disc 2'
-- (m02's) holds a tenth of the rows, the others share the rest. Paths are photos in year and month folders,
-- yYYYY/mMM/IMG_n.jpg (20 × 12 folders per source); every 50th row is a second version of the row before it (in the same source).
-- 85 % archived in bundles of 400, 3 % duplicates of an archived row, the rest staged. Used by bench/family/pages:
-- psql -v rows=1000000 -f pages-fill.sql
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO sources (id, label, metadata, owner_id, started_at, finished_at, files_seen, bytes_seen)
SELECT s, 'Disc ' || s, jsonb_build_object('year', 2000 + s % 20), u.id, now() - interval '60 days' + s * interval '1 hour',
       now() - interval '59 days' + s * interval '1 hour', 0, 0
FROM generate_series(1, 100) AS s
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS position FROM users) AS u ON u.position = (s - 1) % 20 + 1;
SELECT setval(pg_get_serial_sequence('sources', 'id'), 100);

INSERT INTO bundles (id, archive_key, state, member_count, raw_bytes, stored_bytes, archived_at)
SELECT b, 'bundles/' || b || '.tar.zst', 'archived', 400, 400 * 300000, 380 * 300000, now() - interval '30 days'
FROM generate_series(1, :rows / 400 + 1) AS b;
SELECT setval(pg_get_serial_sequence('bundles', 'id'), :rows / 400 + 1);

INSERT INTO objectstoragefiles (id, source_id, name, path, version, kind, size_bytes, hash, modified_at, state, storage,
                                storage_key, archive_key, archived_at, bundle_id, bundle_offset, duplicate_of, attempts)
SELECT n, src, 'IMG_' || m || '.jpg',
       'y' || (2000 + (m / 37) % 20) || '/m' || lpad(((m / 7) % 12 + 1)::text, 2, '0') || '/IMG_' || m || '.jpg',
       CASE WHEN n = m THEN 1 ELSE 2 END,
       'regular', 20000 + (n * 104729) % 4000000,
       CASE WHEN st = 'duplicate' THEN md5((n - 10)::text) || md5((n - 9)::text) ELSE md5(n::text) || md5((n + 1)::text) END,
       now() - interval '2000 days' + (n % 100000) * interval '1 minute',
       st,
       CASE WHEN st = 'archived' THEN 'archive' WHEN st = 'staged' THEN 'staging' END,
       CASE WHEN st = 'staged' THEN 'sources/' || n END,
       CASE WHEN st = 'archived' THEN 'bundles/' || (n / 400 + 1) || '.tar.zst' END,
       CASE WHEN st = 'archived' THEN now() - interval '30 days' END,
       CASE WHEN st = 'archived' THEN n / 400 + 1 END,
       CASE WHEN st = 'archived' THEN (n % 400) * 300000 END,
       CASE WHEN st = 'duplicate' THEN n - 10 END,
       1
FROM (
    SELECT n, m,
           CASE WHEN n <= :rows / 10 THEN 2 ELSE x + (x >= 2)::int END AS src,
           CASE WHEN n % 100 BETWEEN 85 AND 87 THEN 'duplicate' WHEN n % 100 < 85 THEN 'archived' ELSE 'staged' END AS st
    FROM (SELECT n, m, 1 + (m - :rows / 10 - 1) % 99 AS x
          FROM (SELECT n, n - (n % 50 = 0)::int AS m FROM generate_series(1, :rows::bigint) AS n) AS versions) AS numbered
) AS g;
SELECT setval(pg_get_serial_sequence('objectstoragefiles', 'id'), :rows);

UPDATE sources s SET files_seen = c.files, bytes_seen = c.bytes, files_stored = c.files
FROM (SELECT source_id, count(*) AS files, sum(size_bytes) AS bytes FROM objectstoragefiles GROUP BY source_id) AS c
WHERE c.source_id = s.id;
COMMIT;
VACUUM ANALYZE;
