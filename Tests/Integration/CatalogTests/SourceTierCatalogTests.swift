import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// Migration 12 (`sources.tier`) on a catalog that already holds sources, the gap it leaves at 11, and the rules the
/// catalog keeps for a source's tier: set with the first files, then fixed; warm content held only by warm rows.
@Suite("Catalog: the source tier (migration 12)")
struct SourceTierCatalogTests {
    let logger = TestEnvironment.logger

    @Test("migration 12 on an existing catalog: earlier sources become cold, only 'cold' and 'warm' are accepted, and migration 11 arriving later is still applied")
    func migrationOnExistingCatalog() async throws {
        try await TestDatabase.withFresh { _, client in
            let before = CatalogSchema.migrations.filter { $0.version < 11 }
            try await Migrator(migrations: before, logger: logger).migrate(client)
            _ = try await client.query("INSERT INTO sources (label) VALUES ('DVD 1')", logger: logger).collect()
            #expect(try await text(client, "SELECT to_regclass('sources') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'sources' AND column_name = 'tier')") == "true")

            // 12 before 11, as a catalog that ran a build with the tier and not yet the snapshots would.
            let report = try await Migrator(migrations: CatalogSchema.migrations.filter { $0.version != 11 && $0.version <= 12 }, logger: logger).migrate(client)
            #expect(report.applied == [12])
            #expect(try await text(client, "SELECT tier FROM sources WHERE label = 'DVD 1'") == "cold")
            _ = try await client.query("INSERT INTO sources (label, tier) VALUES ('Docs', 'warm')", logger: logger).collect()
            await #expect(throws: (any Error).self) {
                _ = try await client.query("INSERT INTO sources (label, tier) VALUES ('Hot', 'hot')", logger: logger).collect()
            }

            // Migration 11 arriving later goes in after 12 (with the ones after 12): the migrator applies by number, gaps allowed.
            let later = try await Migrator(logger: logger).migrate(client)
            #expect(later.applied == CatalogSchema.migrations.map(\.version).filter { $0 == 11 || $0 > 12 })
            #expect(try await text(client, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")
                    == CatalogSchema.migrations.map { String($0.version) }.joined(separator: ","))
        }
    }

    @Test("a source's tier is set while it holds no file and kept afterwards; no --tier keeps it")
    func tierIsSticky() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let id = try await catalog.openSource(label: "Docs", metadata: [:], note: nil, tier: .warm, origin: "/a")
            #expect(try await catalog.tierOfSource(label: "Docs")?.tier == .warm)
            #expect(try await catalog.tierOfSource(label: "Docs")?.holdsFiles == false)
            // Empty still: a change of mind is taken.
            _ = try await catalog.openSource(label: "Docs", metadata: [:], note: nil, tier: .cold, origin: "/a")
            #expect(try await catalog.tierOfSource(label: "Docs")?.tier == .cold)
            _ = try await catalog.openSource(label: "Docs", metadata: [:], note: nil, tier: .warm, origin: "/a")
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                VALUES (\(id), 'a', 'a', 'regular', 1, \(String(repeating: "ab", count: 32)), 'staging', 'k')
                """, logger: logger).collect()
            // Holding files: neither another tier nor no tier changes it.
            _ = try await catalog.openSource(label: "Docs", metadata: [:], note: nil, tier: .cold, origin: "/a")
            #expect(try await catalog.tierOfSource(label: "Docs")?.tier == .warm)
            _ = try await catalog.openSource(label: "Docs", metadata: [:], note: nil, origin: "/a")
            #expect(try await catalog.tierOfSource(label: "Docs")?.tier == .warm)
            #expect(try await catalog.tierOfSource(label: "Nothing") == nil)
            _ = try await catalog.openSource(label: "New", metadata: [:], note: nil, origin: "/b")
            #expect(try await catalog.tierOfSource(label: "New")?.tier == .cold)
        }
    }

    @Test("content held by a cold row is no holder for a warm file; content held by a warm row is one for a cold file")
    func holdersAcrossTiers() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let cold = try await catalog.openSource(label: "Cold", metadata: [:], note: nil, origin: "/c")
            let warm = try await catalog.openSource(label: "Warm", metadata: [:], note: nil, tier: .warm, origin: "/w")
            let coldHash = String(repeating: "c1", count: 32)
            let warmHash = String(repeating: "d2", count: 32)
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                VALUES (\(cold), 'a', 'a', 'regular', 1, \(coldHash), 'staging', 'k1'), (\(warm), 'b', 'b', 'regular', 1, \(warmHash), 'staging', 'k2')
                """, logger: logger).collect()
            #expect(try await catalog.holder(ofHash: coldHash, sourceID: warm) == nil)
            #expect(try await catalog.holder(ofHash: coldHash, sourceID: cold) != nil)
            #expect(try await catalog.holder(ofHash: warmHash, sourceID: cold) != nil)
            #expect(try await catalog.holder(ofHash: warmHash, sourceID: warm) != nil)
        }
    }

    private func text(_ client: PostgresClient, _ sql: String) async throws -> String? {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: "SELECT (\(sql))::text"), logger: logger).decode(String?.self) {
            return value
        }
        return nil
    }
}
