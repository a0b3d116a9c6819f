import ArchiveFormat
import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// The catalog export written as changes (issue 25): after every drain, a catalog rebuilt from the bucket alone
/// (`rebuild-catalog` into an empty database) must equal the catalog, in what only the export carries: sources with
/// their notes and metadata, duplicate rows, deletes and the delete log. Randomized (seeded: `EXPORT_TEST_SEED`):
/// new sources, new versions, duplicates, deletes, whole exports and changes exports at random, and archivers
/// SIGKILLed after an export reached the bucket but before it was recorded.
@Suite("catalog export as changes, randomized")
struct CatalogExportChangesTests {
    @Test("after every drain, rebuild-catalog from the bucket gives back the catalog (sources, duplicates, deletes, delete log), whether the exports were whole, changes or cut by a SIGKILL")
    func rebuildEqualsCatalog() async throws {
        let seed = ProcessInfo.processInfo.environment["EXPORT_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(Int64.max))
        var random = SplitMix(seed: seed)
        print("catalog export changes test: seed \(seed)")
        try await PipelineHarness.with(.file) { harness in
            let blobs = (0..<12).map { PipelineHarness.bytes(count: Int.random(in: 100...40_000, using: &random), seed: seed &+ UInt64($0)) }
            var log: [String] = ["seed \(seed) (replay with EXPORT_TEST_SEED=\(seed))"]
            var kinds: Set<String> = []
            for round in 1...8 {
                // A source read again (new versions) or a new one; contents repeat across sources (duplicates).
                let label = "disc \(Int.random(in: 1...3, using: &random))"
                let directory = harness.work.path + "/" + label.replacingOccurrences(of: " ", with: "_") + "-\(round)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for index in 0..<Int.random(in: 1...5, using: &random) {
                    let blob = blobs[Int.random(in: 0..<blobs.count, using: &random)]
                    _ = FileManager.default.createFile(atPath: directory + "/f\(index).bin", contents: Data(blob))
                }
                // New content every round, so that every drain archives something and so brings the export up to date.
                _ = FileManager.default.createFile(atPath: directory + "/new.bin", contents: Data(PipelineHarness.bytes(count: 5000, seed: seed &+ 1000 &+ UInt64(round))))
                let note = "round \(round)"
                let upload = try await Program.run(
                    "uploader", ["upload", directory, "--label", label, "--note", note, "--meta", "round=\(round)", "--json"], environment: harness.environment)
                #expect(upload.status == 0, "\(upload.output)")
                // A family member owns the sources: accounts never go to the bucket, so a rebuilt source has no owner.
                try await harness.execute("""
                    INSERT INTO users (name, role, password_hash) VALUES ('ada', 'member', chr(36) || '2b' || chr(36) || '12' || chr(36) || repeat('x', 53))
                    ON CONFLICT (name) DO NOTHING
                    """)
                try await harness.execute("UPDATE sources SET owner_id = (SELECT id FROM users WHERE name = 'ada')")
                // A delete now and then (its grace already over: the archiver carries it out).
                if Int.random(in: 0..<3, using: &random) == 0 {
                    try await harness.execute("""
                        INSERT INTO objectstoragedeletelog (file_id, requested_at)
                        SELECT id, now() - interval '1 second' FROM objectstoragefiles f
                        WHERE deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = f.id)
                        ORDER BY id LIMIT 1
                        """)
                }
                // Whole now and then (a tiny fraction), changes otherwise; the last round writes changes, so that the
                // final rebuild reads a whole export and changes after it.
                let fraction = round < 8 && Int.random(in: 0..<3, using: &random) == 0 ? "0.01" : "1000"
                let options = ["--small-file-threshold", "64KiB", "--bundle-size", "256KiB", "--delete-grace-days", "0", "--export-compact-fraction", fraction]
                let standard = ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]
                if Int.random(in: 0..<4, using: &random) == 0 {
                    // Killed after its export reached the bucket, before it was recorded: the next export must cover
                    // what this one did (its number and snapshot are never taken for done).
                    let crashed = try await harness.archiveOnce(options, environment: standard.merging(["BACKUP_ARCHIVER_CRASH_AT": "export-uploaded"]) { $1 })
                    log.append("round \(round): \(label), archiver killed after its export reached the bucket → \(crashed.status)")
                    try await Task.sleep(for: .seconds(10))  // the dead worker's leases and heartbeat go stale
                }
                let archived = try await harness.archiveOnce(options, environment: standard)
                #expect(archived.status == 0, "\(archived.output.suffix(3000))")
                let keys = try await PipelineHarness.allKeys(harness.archive, prefix: "catalog/")
                kinds.formUnion(keys.map { $0.hasPrefix(CatalogExportFormat.changesPrefix) ? "changes" : "whole" })
                log.append("round \(round): \(label), compact fraction \(fraction); export objects: \(keys.sorted())")
                if round % 3 == 0 || round == 8 { try await Self.expectRebuildEqualsCatalog(harness, log: log) }
            }
            #expect(kinds == ["changes", "whole"], "both kinds were written and read: \(kinds)")
            let last = try await PipelineHarness.allKeys(harness.archive, prefix: CatalogExportFormat.changesPrefix)
            #expect(!last.isEmpty, "the final rebuild read changes after the whole export")
        }
    }

    static func count(_ client: PostgresClient, _ sql: String) async throws -> Int64 {
        var result: Int64 = -1
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).decode(Int64.self) { result = value }
        return result
    }

    /// Rows only the export carries, in a form both catalogs share.
    static func snapshot(_ client: PostgresClient) async throws -> [String] {
        var lines: [String] = []
        let queries: [PostgresQuery] = [
            "SELECT 'source ' || id || ' ' || label || ' ' || coalesce(note, '-') || ' ' || metadata::text FROM sources ORDER BY id",
            """
            SELECT 'file ' || id || ' ' || source_id || ' ' || path || ' v' || version || ' ' || state || ' ' || coalesce(hash, '-')
                || ' dup ' || coalesce(duplicate_of::text, '-') || ' deleted ' || (deleted_at IS NOT NULL)::text || ' ' || coalesce(archive_key, '-')
            FROM objectstoragefiles ORDER BY id
            """,
            "SELECT 'delete ' || id || ' ' || file_id || ' ' || (processed_at IS NOT NULL)::text || ' ' || coalesce(outcome, '-') FROM objectstoragedeletelog ORDER BY id",
        ]
        for query in queries {
            for try await line in try await client.query(query, logger: TestEnvironment.logger).decode(String.self) { lines.append(line) }
        }
        return lines
    }

    static func expectRebuildEqualsCatalog(_ harness: PipelineHarness, log: [String]) async throws {
        let original = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { try await snapshot($0) }
        let database = try await TestDatabase.create()
        defer { Task { try? await database.drop() } }
        var environment = harness.environment
        environment["DATABASE_URL"] = try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?")
        let rebuild = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--json"], environment: environment)
        #expect(rebuild.status == 0, "\(log.joined(separator: "\n"))\n\(rebuild.output.suffix(3000))")
        let rebuilt = try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            #expect(try await Self.count(client, "SELECT count(*) FROM sources WHERE owner_id IS NOT NULL") == 0, "no owner comes back without accounts")
            #expect(try await Self.count(client, "SELECT count(*) FROM users") == 0, "accounts are not in the bucket")
            return try await snapshot(client)
        }
        let missing = original.filter { !rebuilt.contains($0) }
        let extra = rebuilt.filter { !original.contains($0) }
        #expect(missing.isEmpty && extra.isEmpty, "\(log.joined(separator: "\n"))\nnot rebuilt: \(missing)\nrebuilt but not in the catalog: \(extra)")
    }
}
