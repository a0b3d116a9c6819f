import Catalog
import Foundation
import Logging
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// An encrypted source on the status page and in its JSON: it says so, and counts the videos that were archived as
/// recorded because the cloud cannot read them to transcode them.
@Suite("status of an encrypted source")
struct EncryptedSourceStatusTests {
    @Test("the page and the JSON name the encryption and the videos kept as they are; a clear source shows neither")
    func encryptedSource() async throws {
        try await withCatalog { _, client in
            try await exec(client, """
                INSERT INTO sources (label, finished_at, encryption) VALUES ('Tax papers', now(),
                    '{"scheme": "recipients", "recipients": ["age1aaa", "age1bbb"], "recipients_fingerprint": "f"}');
                INSERT INTO sources (label, finished_at) VALUES ('Holiday DVD', now());
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, archive_key, archived_at, details)
                VALUES (1, 'a', 'a.age', 'regular', 100, lpad('a1', 64, '0'), 'archive', 'ka', 'archived', 'arch/a', now(),
                        '{"encryption": "age", "video_not_transcoded": "encrypted"}'),
                       (1, 'b', 'b.age', 'regular', 100, lpad('b1', 64, '0'), 'archive', 'kb', 'archived', 'arch/b', now(), '{"encryption": "age"}'),
                       (2, 'c', 'c.txt', 'regular', 100, lpad('c1', 64, '0'), 'archive', 'kc', 'archived', 'arch/c', now(), '{}')
                """)
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                let sources = try #require(json["sources"] as? [[String: Any]])
                let encrypted = try #require(sources.first { $0["label"] as? String == "Tax papers" })
                let clear = try #require(sources.first { $0["label"] as? String == "Holiday DVD" })
                #expect(encrypted["encryption"] as? String == "age, to 2 recipients")
                #expect(int64(encrypted["videos_not_transcoded"]) == 1)
                #expect(clear["encryption"] == nil || clear["encryption"] is NSNull)
                let page = try await request(base + "/").body
                #expect(page.contains("encrypted on this side (age, to 2 recipients) · 1 video archived as recorded, not transcoded"), "\(page)")
                #expect(page.components(separatedBy: "encrypted on this side").count == 2, "only the encrypted source says so")
            }
        }
    }
}
