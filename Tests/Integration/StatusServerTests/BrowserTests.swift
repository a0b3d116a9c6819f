import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport
import Alerts
import SystemIO

@Suite("The page in a real headless Chromium")
struct BrowserTests {
    /// Chromium from the Debian package (`apt-get install chromium`).
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("Chromium renders the page with the totals of the catalog; a screenshot is kept when asked")
    func rendersInChromium() async throws {
        let chromium = try #require(Self.chromium, "Chromium is not installed: apt-get install chromium")
        try await withCatalog { _, client in
            try await DemoCatalog.insert(client)
            // The watchdog's first look, so that the page shows its alerts too.
            _ = try await AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger).pass()
            try await withStatusServer(try testConfiguration(), client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                let filesTotal = try #require(int64(json["files_total"]))
                #expect(filesTotal > 100_000)
                let profile = try TemporaryDirectory("chr")
                defer { profile.remove() }
                let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(profile.path)"]

                let dump = try await Subprocess.run("/usr/bin/timeout", ["90", chromium] + flags + ["--dump-dom", base + "/"])
                #expect(dump.status == 0, "chromium exited \(dump.status): \(dump.output.suffix(500))")
                let dom = dump.output
                #expect(dom.contains("<h1>Backup status</h1>"))
                #expect(dom.contains("id=\"files-total\">\(Self.grouped(filesTotal))<"), "the total file count, as rendered")
                #expect(dom.contains("Raw bytes") && dom.contains("After processing") && dom.contains("Saved"))
                #expect(dom.contains("<svg"), "the chart")
                #expect(dom.contains("DVD 12 · family 2008"))
                #expect(dom.contains("&lt;unsafe&gt; label"), "escaped in the DOM as rendered")

                let screenshot = ProcessInfo.processInfo.environment["STATUS_SCREENSHOT_PATH"] ?? (profile.path + "/status-page.png")
                let shot = try await Subprocess.run(
                    "/usr/bin/timeout", ["90", chromium] + flags + ["--hide-scrollbars", "--window-size=1280,1600", "--screenshot=\(screenshot)", base + "/"])
                #expect(shot.status == 0, "chromium exited \(shot.status): \(shot.output.suffix(500))")
                let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
                #expect(png.count > 20_000)
                #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG")
            }
        }
    }

    static func grouped(_ value: Int64) -> String {
        let digits = String(value)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return result
    }
}

/// A catalog that looks like a few weeks of real use: three sources at different stages, workers, failures,
/// and two days of archiving at a changing rate.
enum DemoCatalog {
    static func insert(_ client: PostgresClient) async throws {
        try await exec(client, """
            INSERT INTO sources (id, label, metadata, note, started_at, finished_at, files_seen, bytes_seen) VALUES
              (1, 'DVD 12 · family 2008', '{"year": 2008, "disc": 12, "owner": "Ann"}', 'holiday videos and photos', now() - interval '2 days', now() - interval '47 hours', 40000, 0),
              (2, 'Old laptop drive', '{"model": "ThinkPad T60", "year": 2007}', NULL, now() - interval '30 hours', now() - interval '29 hours', 110000, 0),
              (3, 'HDV tapes, box 3', '{"tapes": 14}', 'still capturing', now() - interval '3 hours', NULL, 900, 900000000000),
              (4, '<unsafe> label', '{}', NULL, now() - interval '1 hour', now() - interval '50 minutes', 1, 1);
            SELECT setval('sources_id_seq', 4);
            INSERT INTO workers (id, role, host, pid, version, started_at, heartbeat_at) VALUES
              (gen_random_uuid(), 'archiver', 'fargate-task-1', 7, '0.1.0', now() - interval '2 days', now() - interval '3 seconds'),
              (gen_random_uuid(), 'archiver', 'fargate-task-2', 7, '0.1.0', now() - interval '5 hours', now() - interval '1 second'),
              (gen_random_uuid(), 'transcoder', 'fargate-task-3', 7, '0.1.0', now() - interval '2 days', now() - interval '6 seconds'),
              (gen_random_uuid(), 'transcoder', 'fargate-task-4', 7, '0.1.0', now() - interval '9 hours', now() - interval '3 minutes'),
              (gen_random_uuid(), 'uploader', 'nas', 4711, '0.1.0', now() - interval '3 hours', now() - interval '2 seconds');
            INSERT INTO bundles (archive_key, state, member_count, raw_bytes, stored_bytes, archived_at)
              SELECT 'bundles/' || n || '.tar.zst', 'archived', 500, 2000000000, 1400000000, now() - n * interval '1 hour' FROM generate_series(1, 20) AS n;
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at, stored_size_bytes)
              SELECT 1, 'f' || n, 'DCIM/' || n || '.jpg', 'regular', 40000 + (n * 7919) % 4000000, lpad(to_hex(n), 64, '0'), 'archived', 'archive', 'k' || n, 'a' || n,
                     now() - interval '47 hours' + (n * interval '1 second') * 0.9, NULL
              FROM generate_series(1, 38000) AS n;
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at, stored_size_bytes)
              SELECT 1, 'v' || n, 'VIDEO_TS/VTS_' || n || '.VOB', 'video', 1000000000, lpad(to_hex(1000000 + n), 64, '0'), 'archived', 'archive', 'kv' || n, 'av' || n,
                     now() - interval '40 hours' + n * interval '20 minutes', 310000000
              FROM generate_series(1, 60) AS n;
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, duplicate_of)
              SELECT 1, 'd' || n, 'Backup/DCIM/' || n || '.jpg', 'regular', 40000 + (n * 7919) % 4000000, lpad(to_hex(n), 64, '0'), 'duplicate', 'archive', 'k' || n, n
              FROM generate_series(1, 1940) AS n;
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at)
              SELECT 2, 'l' || n, 'home/ann/' || n || '.doc', 'regular', 20000 + (n::bigint * 104729) % 900000, lpad(to_hex(2000000 + n), 64, '0'),
                     CASE WHEN n <= 70000 THEN 'archived' ELSE 'staged' END,
                     CASE WHEN n <= 70000 THEN 'archive' ELSE 'staging' END, 'kl' || n,
                     CASE WHEN n <= 70000 THEN 'al' || n END,
                     CASE WHEN n <= 70000 THEN now() - interval '26 hours' + n * interval '1.336 seconds' END
              FROM generate_series(1, 110000) AS n;
            UPDATE objectstoragefiles SET state = 'archiving', lease_owner = (SELECT id FROM workers WHERE host = 'fargate-task-1'),
                     lease_expires_at = now() + interval '25 seconds', lease_from_state = 'staged'
              WHERE source_id = 2 AND name IN (SELECT 'l' || n FROM generate_series(70001, 70200) AS n);
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key)
              SELECT 3, 'tape' || n, 'tape-' || n || '.m2t', 'video', 13000000000, lpad(to_hex(3000000 + n), 64, '0'),
                     CASE WHEN n <= 3 THEN 'transcoded' ELSE 'staged' END, 'staging', 'kt' || n
              FROM generate_series(1, 9) AS n;
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, lease_owner, lease_expires_at, lease_from_state)
              VALUES (3, 'tape10', 'tape-10.m2t', 'video', 13000000000, lpad(to_hex(3000010), 64, '0'), 'transcoding', 'staging', 'kt10',
                      (SELECT id FROM workers WHERE host = 'fargate-task-3'), now() + interval '20 seconds', 'staged');
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, error, attempts)
              VALUES (2, 'corrupt.avi', 'home/ann/Videos/corrupt.avi', 'video', 73400320, lpad('c0', 64, '0'), 'failed', 'staging', 'kc',
                      'transcode failed: avcodec_send_packet: Invalid data found when processing input (frame 1893)', 5);
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, error)
              VALUES (2, 'bad-sector.pst', 'home/ann/Mail/bad-sector.pst', 'regular', 524288000, NULL, 'unreadable',
                      'read failed at offset 104857600: Input/output error (after 3 retries)');
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at)
              VALUES (4, 'x', '<b>x</b>', 'regular', 1, lpad('d0', 64, '0'), 'archived', 'archive', 'kx', 'ax', now() - interval '40 minutes');
            UPDATE sources s SET files_seen = c.files, bytes_seen = c.bytes
              FROM (SELECT source_id, count(*) AS files, sum(size_bytes) AS bytes FROM objectstoragefiles GROUP BY source_id) c
              WHERE c.source_id = s.id AND s.finished_at IS NOT NULL;
            VACUUM ANALYZE objectstoragefiles
            """)
    }
}
