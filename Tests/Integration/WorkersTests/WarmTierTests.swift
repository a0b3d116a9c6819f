import Catalog
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
import SystemIO

/// `--tier warm`: a warm and a cold source archived by the same archiver run, each in its own class and bundles,
/// checked against what the archive server itself reports; a warm file restored at once, with no restore request.
@Suite("archiver: the warm tier")
struct WarmTierTests {
    static let kib = 1024

    @Test("moto: warm files go to GLACIER_IR in bundles of the warm size (large ones alone), cold ones to DEEP_ARCHIVE, never mixed; warm restores at once, cold needs restore requests; the status shows both; --tier is fixed once a source holds files")
    func warmAndColdTogether() async throws {
        try await PipelineHarness.with(.s3) { harness in
            // Cold: the harness's source directory. Warm: another directory, with one file the cold source has too.
            var cold: [String: [UInt8]] = [:]
            for index in 0..<6 { cold["cold/c\(index).bin"] = PipelineHarness.bytes(count: 40 * Self.kib, seed: UInt64(100 + index)) }
            let shared = PipelineHarness.bytes(count: 40 * Self.kib, seed: 999)
            cold["cold/shared.bin"] = shared
            for (path, bytes) in cold { try harness.write(path, bytes) }
            let warmRoot = harness.work.path + "/warm-src"
            var warm: [String: [UInt8]] = [:]
            for index in 0..<6 { warm["w\(index).bin"] = PipelineHarness.bytes(count: 40 * Self.kib, seed: UInt64(200 + index)) }
            warm["shared.bin"] = shared
            warm["large.bin"] = PipelineHarness.bytes(count: 300 * Self.kib, seed: 300)
            for (path, bytes) in warm {
                try FileManager.default.createDirectory(atPath: warmRoot, withIntermediateDirectories: true)
                _ = FileManager.default.createFile(atPath: warmRoot + "/" + path, contents: Data(bytes))
            }

            let coldUpload = try await harness.upload(label: "Cold")
            #expect(coldUpload.status == 0, "\(coldUpload.output)")
            let warmUpload = try await harness.upload(label: "Warm", path: warmRoot, extra: ["--tier", "warm"])
            #expect(warmUpload.status == 0, "\(warmUpload.output)")
            let archived = try await harness.archiveOnce(["--warm-bundle-size", "128KiB", "--small-file-threshold", "1MiB", "--bundle-size", "4MiB"])
            #expect(archived.status == 0, "\(archived.output)")

            // Every file archived itself: the warm copy of the shared content is not a duplicate of the cold one.
            let rows = try await harness.rows()
            #expect(rows.count == cold.count + warm.count)
            #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")

            // Each bundle holds one tier only, in that tier's class as the server reports it; warm bundles stay small.
            let bundles = try await harness.strings("""
                SELECT b.archive_key || '|' || b.storage_class || '|' || string_agg(DISTINCT s.tier, ',') || '|' || sum(f.size_bytes)::text || '|' || count(*)::text
                FROM bundles b JOIN objectstoragefiles f ON f.bundle_id = b.id JOIN sources s ON s.id = f.source_id
                WHERE b.state = 'archived' GROUP BY b.id ORDER BY b.id
                """)
            var warmBundles = 0
            var coldBundles = 0
            for line in bundles {
                let parts = line.split(separator: "|").map(String.init)
                let (key, recordedClass, tiers, bytes) = (parts[0], parts[1], parts[2], Int(parts[3]) ?? 0)
                #expect(tiers == "warm" || tiers == "cold", "a bundle mixes tiers: \(line)")
                let expected = tiers == "warm" ? "GLACIER_IR" : "DEEP_ARCHIVE"
                #expect(recordedClass == expected, "\(line)")
                #expect(try await harness.archive.head(key)?.storageClassName == expected, "the server stores \(key) in another class")
                if tiers == "warm" {
                    warmBundles += 1
                    #expect(bytes <= 128 * Self.kib, "a warm bundle past the warm size: \(line)")
                } else {
                    coldBundles += 1
                }
            }
            #expect(warmBundles >= 3, "7 warm files of 40 KiB in bundles of 128 KiB: \(bundles)")
            #expect(coldBundles == 1, "7 cold files of 40 KiB in one bundle of 4 MiB: \(bundles)")
            // The large warm file is stored alone, in the warm class too.
            let large = try #require(rows.first { $0.path == "large.bin" })
            let largeKey = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE id = \(large.id) AND bundle_id IS NULL", as: String.self))
            #expect(try await harness.archive.head(largeKey)?.storageClassName == "GLACIER_IR")

            // A warm file comes back at once: no restore request, byte for byte.
            let restoredWarm = try await Self.restore(harness, ["--source", "Warm", "--path", "w3.bin"])
            #expect(restoredWarm.status == 0, "\(restoredWarm.output)")
            #expect(restoredWarm.files["Warm/w3.bin"].map(PipelineHarness.sha256) == warm["w3.bin"].map(PipelineHarness.sha256), "\(restoredWarm.files.keys.sorted())")
            #expect(restoredWarm.files.count == 1)
            #expect(!restoredWarm.output.contains("restore_requested"), "\(restoredWarm.output)")
            #expect(try await harness.scalar("SELECT count(*)::bigint FROM restore_requests", as: Int64.self) == 0)
            let wholeWarm = try await Self.restore(harness, ["--source", "Warm"])
            #expect(wholeWarm.status == 0, "\(wholeWarm.output)")
            for (path, bytes) in warm { #expect(wholeWarm.files["Warm/" + path].map(PipelineHarness.sha256) == PipelineHarness.sha256(bytes), "\(path)") }
            #expect(try await harness.scalar("SELECT count(*)::bigint FROM restore_requests", as: Int64.self) == 0)
            // The cold source, by contrast, needs a restore request per object (moto finishes them at once).
            let restoredCold = try await Self.restore(harness, ["--source", "Cold"])
            #expect(restoredCold.status == 0, "\(restoredCold.output)")
            #expect(restoredCold.files["Cold/cold/c2.bin"].map(PipelineHarness.sha256) == cold["cold/c2.bin"].map(PipelineHarness.sha256))
            #expect(try await harness.scalar("SELECT count(*)::bigint FROM restore_requests", as: Int64.self) == 1)

            // The status: each source's tier, and per tier the class, the counts and a priced estimate.
            let snapshot = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                try await StatusCatalog(client: client, logger: TestEnvironment.logger).read()
            }
            #expect(snapshot.sources.first { $0.label == "Warm" }?.tier == "warm")
            #expect(snapshot.sources.first { $0.label == "Cold" }?.tier == "cold")
            let warmTier = try #require(snapshot.tiers.first { $0.tier == "warm" })
            let coldTier = try #require(snapshot.tiers.first { $0.tier == "cold" })
            #expect(warmTier.storageClass == "GLACIER_IR" && coldTier.storageClass == "DEEP_ARCHIVE")
            #expect(warmTier.sources == 1 && coldTier.sources == 1)
            #expect(warmTier.filesArchived == Int64(warm.count) && coldTier.filesArchived == Int64(cold.count))
            #expect(warmTier.bytesStored == Int64(warm.values.reduce(0) { $0 + $1.count }))
            #expect(coldTier.bytesStored == Int64(cold.values.reduce(0) { $0 + $1.count }))
            #expect(abs(warmTier.estimatedMonthlyUSD - Double(warmTier.bytesStored) / Double(1 << 30) * 0.004) < 1e-12)

            // Sticky: another --tier is refused in one line, before anything is read; no --tier keeps warm.
            _ = FileManager.default.createFile(atPath: warmRoot + "/new.bin", contents: Data(PipelineHarness.bytes(count: 10, seed: 7)))
            let refused = try await harness.upload(label: "Warm", path: warmRoot, extra: ["--tier", "cold"])
            #expect(refused.status == 2, "\(refused.output)")
            #expect(refused.output.contains("error: source 'Warm' is warm"), "\(refused.output)")
            #expect(try await harness.scalar("SELECT count(*)::bigint FROM objectstoragefiles WHERE path = 'new.bin'", as: Int64.self) == 0)
            #expect(try await harness.scalar("SELECT finished_at IS NOT NULL FROM sources WHERE label = 'Warm'", as: Bool.self) == true,
                    "a refused run leaves the source as it was")
            let kept = try await harness.upload(label: "Warm", path: warmRoot)
            #expect(kept.status == 0, "\(kept.output)")
            #expect(try await harness.scalar("SELECT tier FROM sources WHERE label = 'Warm'", as: String.self) == "warm")
            let same = try await harness.upload(label: "Warm", path: warmRoot, extra: ["--tier", "warm"])
            #expect(same.status == 0, "\(same.output)")
        }
    }

    @Test("file://: a warm file is stored as GLACIER_IR (or STANDARD_IA when configured) and restored at once, even where a cold restore would take an hour")
    func warmOnFileArchive() async throws {
        try await PipelineHarness.with(.file) { harness in
            let docs = ["a.txt": Array("warm and ready\n".utf8), "b.bin": PipelineHarness.bytes(count: 20 * Self.kib, seed: 5)]
            for (path, bytes) in docs { try harness.write("docs/" + path, bytes) }
            let uploaded = try await harness.upload(label: "Docs", extra: ["--tier", "warm"])
            #expect(uploaded.status == 0, "\(uploaded.output)")
            let archived = try await harness.archiveOnce(environment: ["BACKUP_WARM_STORAGE_CLASS": "STANDARD_IA"])
            #expect(archived.status == 0, "\(archived.output)")
            let keys = try await harness.strings("SELECT DISTINCT archive_key FROM objectstoragefiles")
            #expect(keys.count == 1, "two small files, one bundle: \(keys)")
            #expect(try await harness.archive.head(keys[0])?.storageClassName == "STANDARD_IA")
            #expect(try await harness.strings("SELECT storage_class FROM bundles") == ["STANDARD_IA"])
            // A file:// restore of Deep Archive would now take an hour (exit 3, pending); a warm one is immediate.
            let restored = try await Self.restore(harness, ["--source", "Docs"], environment: ["BACKUP_TEST_FILE_RESTORE_SECONDS": "3600"])
            #expect(restored.status == 0, "\(restored.output)")
            for (path, bytes) in docs { #expect(restored.files["Docs/docs/" + path].map(PipelineHarness.sha256) == PipelineHarness.sha256(bytes), "\(path)") }
            #expect(try await harness.scalar("SELECT count(*)::bigint FROM restore_requests", as: Int64.self) == 0)
            // A warm class that would need a restore is refused as configuration, in one line.
            let bad = try await harness.archiveOnce(environment: ["BACKUP_WARM_STORAGE_CLASS": "DEEP_ARCHIVE"])
            #expect(bad.status == 2)
            #expect(bad.output.contains("configuration error: BACKUP_WARM_STORAGE_CLASS: must be GLACIER_IR, STANDARD_IA, STANDARD"), "\(bad.output)")
        }
    }

    static func restore(
        _ harness: PipelineHarness, _ arguments: [String], environment extra: [String: String] = [:]
    ) async throws -> (status: Int32, output: String, files: [String: [UInt8]]) {
        let directory = harness.work.path + "/restored-" + UUID().uuidString.prefix(8)
        let result = try await Program.run(
            "uploader", ["restore"] + arguments + ["--to", directory, "--json"], environment: harness.environment.merging(extra) { $1 })
        var files: [String: [UInt8]] = [:]
        if let enumerator = FileManager.default.enumerator(atPath: directory) {
            while let relative = enumerator.nextObject() as? String {
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDirectory)
                if !isDirectory.boolValue, !relative.hasPrefix(".personal-backup"), let data = FileManager.default.contents(atPath: directory + "/" + relative) {
                    files[relative] = Array(data)
                }
            }
        }
        return (result.status, result.output, files)
    }
}

extension PipelineHarness {
    /// One text column of every row of `sql`.
    func strings(_ sql: String) async throws -> [String] {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            var values: [String] = []
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).decode(String.self) {
                values.append(value)
            }
            return values
        }
    }
}
