import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// The tiers on the status page and in `/api/status`: each source's tier, and per tier the class configured, the
/// counts, the bytes stored and the estimated monthly cost at list price.
@Suite("status of cold and warm sources")
struct TierStatusTests {
    @Test("the JSON and the page show each source's tier and both tiers priced at their class (STANDARD_IA configured for warm)")
    func tiersAndCost() async throws {
        try await withCatalog { _, client in
            let gib: Int64 = 1 << 30
            try await exec(client, """
                INSERT INTO sources (label, finished_at, tier) VALUES ('Old DVDs', now(), 'cold'), ('Tax papers', now(), 'warm');
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, archive_key, archived_at)
                VALUES (1, 'a', 'a.vob', 'regular', \(10 * gib), lpad('a1', 64, '0'), 'archive', 'ka', 'archived', 'arch/a', now()),
                       (2, 'b', 'b.pdf', 'regular', \(2 * gib), lpad('b1', 64, '0'), 'archive', 'kb', 'archived', 'arch/b', now()),
                       (2, 'c', 'c.pdf', 'regular', 100, lpad('c1', 64, '0'), 'staging', 'kc', 'staged', NULL, NULL)
                """)
            var configuration = try testConfiguration()
            configuration.tierClasses = TierStorageClasses(cold: .deepArchive, warm: .standardInfrequentAccess)
            try await withStatusRoutes(configuration, client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                let sources = try #require(json["sources"] as? [[String: Any]])
                #expect(sources.first { $0["label"] as? String == "Tax papers" }?["tier"] as? String == "warm")
                #expect(sources.first { $0["label"] as? String == "Old DVDs" }?["tier"] as? String == "cold")
                let tiers = try #require(json["tiers"] as? [[String: Any]])
                let warm = try #require(tiers.first { $0["tier"] as? String == "warm" })
                let cold = try #require(tiers.first { $0["tier"] as? String == "cold" })
                #expect(warm["storage_class"] as? String == "STANDARD_IA")
                #expect(cold["storage_class"] as? String == "DEEP_ARCHIVE")
                #expect(int64(warm["files_total"]) == 2 && int64(warm["files_archived"]) == 1 && int64(warm["bytes_stored"]) == 2 * gib)
                #expect(int64(cold["files_archived"]) == 1 && int64(cold["bytes_stored"]) == 10 * gib)
                // 2 GiB at 0.0125 USD and 10 GiB at 0.00099 USD a GB-month.
                #expect(abs(((warm["estimated_monthly_usd"] as? NSNumber)?.doubleValue ?? 0) - 0.025) < 1e-9)
                #expect(abs(((cold["estimated_monthly_usd"] as? NSNumber)?.doubleValue ?? 0) - 0.0099) < 1e-9)
                let page = try await request(base + "/").body
                #expect(page.contains("Tiers and storage cost"), "\(page)")
                #expect(page.contains("<tr id=\"tier-warm\"><td>warm</td><td>STANDARD_IA</td>"), "\(page)")
                #expect(page.contains("<tr id=\"tier-cold\"><td>cold</td><td>DEEP_ARCHIVE</td>"), "\(page)")
                #expect(page.contains("$0.03"), "the warm estimate, rounded to cents")
                #expect(page.contains("<span class=\"badge tier\" title=\"tier\">warm</span>"))
            }
        }
    }
}
