import Foundation
import NIOHTTP1
import PostgresNIO

/// A small catalog with a known answer for every figure of the status page.
enum SampleCatalog {
    static let aliveWorker = UUID(uuidString: "11111111-1111-4111-8111-111111111111")!
    static let deadWorker = UUID(uuidString: "22222222-2222-4222-8222-222222222222")!
    static let stoppedWorker = UUID(uuidString: "33333333-3333-4333-8333-333333333333")!
    static let hostileLabel = "<script>alert(1)</script> & Co"
    static let hostilePath = "<img src=x onerror=alert(2)>.mpg"

    static let filesTotal: Int64 = 13
    static let bytesRaw: Int64 = 49600
    static let bytesStored: Int64 = 16500
    static let savedTranscoding: Int64 = 7500
    static let savedDedupe: Int64 = 3000
    static let savedCompression: Int64 = 2000
    static let filesByState: [String: Int64] = [
        "spooled": 0, "staged": 2, "transcoding": 0, "transcoded": 1, "archiving": 1, "archived": 5, "duplicate": 2, "failed": 1, "unreadable": 1,
    ]

    static func insert(_ client: PostgresClient) async throws {
        try await exec(client, """
            INSERT INTO sources (id, label, metadata, note, finished_at, files_seen, bytes_seen) VALUES
              (1, 'DVD 12', '{"year": 2008, "owner": "Ann"}', 'school videos', now() - interval '1 hour', 8, 19600),
              (2, '\(hostileLabel)', '{"note": "<b>bold</b>"}', NULL, NULL, 6, 40000);
            SELECT setval('sources_id_seq', 2);
            INSERT INTO workers (id, role, host, pid, version, started_at, heartbeat_at, stopped_at, stop_reason) VALUES
              ('\(aliveWorker)', 'archiver', 'box-a', 101, '0.1.0', now() - interval '2 hours', now() - interval '2 seconds', NULL, NULL),
              ('\(deadWorker)', 'transcoder', 'box-b', 202, '0.1.0', now() - interval '3 hours', now() - interval '5 minutes', NULL, NULL),
              ('\(stoppedWorker)', 'uploader', 'laptop', 303, '0.1.0', now() - interval '50 minutes', now() - interval '40 minutes', now() - interval '40 minutes', 'finished');
            INSERT INTO bundles (archive_key, state, member_count, raw_bytes, stored_bytes, archived_at)
              VALUES ('bundles/1.tar.zst', 'archived', 2, 6000, 4000, now() - interval '2 hours');
            """)
        // (source, name, kind, size, state, stored size, extra columns)
        let rows: [(Int, String, String, Int64, String, String)] = [
            (1, "a.txt", "regular", 1000, "archived", "stored_size_bytes = 1000, archived_at = now() - interval '3 hours'"),
            (1, "b.txt", "regular", 2000, "archived", "stored_size_bytes = 2000, archived_at = now() - interval '2 hours'"),
            (1, "c.txt", "regular", 3000, "archived", "stored_size_bytes = NULL, archived_at = now() - interval '90 minutes'"),
            (1, "film.dv", "video", 10000, "archived", "stored_size_bytes = 2500, archived_at = now() - interval '10 minutes'"),
            (1, "copy-of-a.txt", "regular", 1000, "duplicate", "duplicate_of = 1"),
            (1, "copy-of-b.txt", "regular", 2000, "duplicate", "duplicate_of = 2"),
            (1, hostilePath, "video", 500, "failed", "error = 'decoder said <b>no</b>: invalid data', attempts = 5"),
            (1, "scratched.doc", "regular", 100, "unreadable", "hash = NULL, error = 'Input/output error'"),
            (2, "d.txt", "regular", 4000, "staged", ""),
            (2, "e.txt", "regular", 5000, "staged", ""),
            (2, "f.iso", "disc_image", 6000, "archiving",
             "lease_owner = '\(aliveWorker)', lease_expires_at = now() + interval '30 seconds', lease_from_state = 'staged', attempts = 1"),
            (2, "clip.mpg", "video", 7000, "transcoded", ""),
            (2, "g.txt", "regular", 8000, "archived", "stored_size_bytes = 8000, archived_at = now() - interval '5 minutes'"),
        ]
        for (index, (source, name, kind, size, state, extra)) in rows.enumerated() {
            let id = index + 1
            let path = "dir/" + name.replacingOccurrences(of: "'", with: "''")
            try await exec(client, """
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key)
                VALUES (\(id), \(source), '\(name)', '\(path)', '\(kind)', \(size), lpad(to_hex(\(id)), 64, '0'), 'staged', 'staging', 'k\(id)');
                """)
            var assignments = ["state = '\(state)'"]
            if state == "archived" { assignments.append("archive_key = 'archive/\(id)', storage = 'archive'") }
            if !extra.isEmpty { assignments.append(extra) }
            try await exec(client, "UPDATE objectstoragefiles SET \(assignments.joined(separator: ", ")) WHERE id = \(id)")
        }
        try await exec(client, "SELECT setval('objectstoragefiles_id_seq', 13)")
    }
}
