import Catalog
import Foundation
import Logging
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// A disc read into a spool and partly sent: the page and its JSON show, for the source, what was read, sent and
/// archived and what the spool's sender is doing, and never call the source archived while a file waits.
@Suite("status page: spools and their senders")
struct SpoolStatusTests {
    static let spoolID = "5b1d7c6e-0d1f-4a43-9c55-3f7e2b8a9d10"

    /// Source 1 "DVD 12": four files read; one archived, one staged (sent), two still spooled. The spool's sender
    /// is paused outside its window, as `uploader send --window` records it.
    static func insertSpooledSource(_ client: PostgresClient) async throws {
        try await exec(client, """
            INSERT INTO sources (label, finished_at) VALUES ('DVD 12', now());
            INSERT INTO spools (id, host, path, sender_state, sender_detail, sender_updated_at)
            VALUES ('\(spoolID)', 'nas', '/srv/<spool>', 'paused', 'until 01:00: outside every transfer window', now());
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, archive_key, archived_at)
            VALUES (1, 'a', 'a.bin', 'regular', 100, lpad('a1', 64, '0'), 'archive', 'ka', 'archived', 'arch/a', now());
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state)
            VALUES (1, 'b', 'b.bin', 'regular', 200, lpad('b2', 64, '0'), 'staging', 'sources/1/b', 'staged');
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, spool_id)
            VALUES (1, 'c', 'c.bin', 'regular', 300, lpad('c3', 64, '0'), 'spool', 'sources/1/c', 'spooled', '\(spoolID)'),
                   (1, 'd', 'd.bin', 'regular', 400, lpad('d4', 64, '0'), 'spool', 'sources/1/d', 'spooled', '\(spoolID)')
            """)
    }

    @Test("read 4 · sent 2 · archived 1, the sender 'paused (until 01:00 …)' beside the source and in a spools table; the JSON carries both")
    func spooledSourceShowsItsSender() async throws {
        try await withCatalog { _, client in
            try await Self.insertSpooledSource(client)
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                let source = try #require((json["sources"] as? [[String: Any]])?.first)
                #expect(source["complete"] as? Bool == false)
                let waits = try #require(source["waiting_in_spools"] as? [[String: Any]])
                #expect(waits.count == 1 && waits.first?["spool_id"] as? String == Self.spoolID.uppercased() && int64(waits.first?["files"]) == 2, "\(waits)")
                let spool = try #require((json["spools"] as? [[String: Any]])?.first)
                #expect(spool["sender_state"] as? String == "paused" && int64(spool["files_waiting"]) == 2 && int64(spool["bytes_waiting"]) == 700, "\(spool)")

                let page = try await request(base + "/").body
                #expect(page.contains("badge busy\">read, waiting to send</span>"))
                #expect(!page.contains("badge ok\">archived</span>"))
                #expect(page.contains("read 4 · sent 2 · archived 1 · 2 waiting in /srv/&lt;spool&gt; on nas: sender paused (until 01:00: outside every transfer window)"), "\(page)")
                #expect(page.contains("<section id=\"spools\">"))
            }
            // Once sent, the line and the badge go; the spools table stays, with nothing waiting.
            try await exec(client, "UPDATE objectstoragefiles SET state = 'staged', storage = 'staging', spool_id = NULL WHERE state = 'spooled'")
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let page = try await request(base + "/").body
                #expect(!page.contains("read, waiting to send") && !page.contains("spool-progress"))
                #expect(page.contains("0 files · 0 B"), "\(page)")
            }
        }
    }
}
