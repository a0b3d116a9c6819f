import SystemIO
import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
@testable import ArchiveStep
@testable import JobQueue
@testable import TranscodeStep

/// The real `uploader` and `archiver` programs against real Postgres and moto S3 or file:// buckets.
@Suite("archiver end to end")
struct ArchiverTests {
    /// A small tree: documents that compress, "photos" that do not, an identical pair, one large file.
    static func makeTree(_ harness: PipelineHarness) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for index in 0..<12 {
            files["docs/note \(index).txt"] = Array(String(repeating: "line \(index) of a letter to grandma\n", count: 200).utf8)
        }
        files["photos/ä holiday.jpg"] = [0xFF, 0xD8, 0xFF, 0xE0] + PipelineHarness.bytes(count: 300_000, seed: 7)
        files["photos/copy of holiday.jpg"] = files["photos/ä holiday.jpg"]
        files[String(repeating: "deep/", count: 30) + "long name.txt"] = Array("far down\n".utf8)
        files["empty.txt"] = []
        files["video-export.bin"] = PipelineHarness.bytes(count: 3 << 20, seed: 9)
        for (path, bytes) in files { try harness.write(path, bytes) }
        return files
    }

    @Test("file:// buckets: everything archived once, bundles match their manifests, staging emptied, export written")
    func fileBuckets() async throws {
        try await PipelineHarness.with(.file) { harness in
            let files = try Self.makeTree(harness)
            let upload = try await harness.upload(label: "DVD 12")
            #expect(upload.status == 0, "\(upload.output)")
            // 1 MiB threshold: the 3 MiB file goes alone, the rest into bundles.
            let result = try await harness.archiveOnce(["--small-file-threshold", "1MiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(result.status == 0, "\(result.output)")

            let rows = try await harness.rows()
            #expect(rows.count == files.count)
            #expect(rows.allSatisfy { $0.state == "archived" || $0.state == "duplicate" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            #expect(rows.filter { $0.state == "duplicate" }.count == 1)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            #expect(try await harness.scalar("SELECT count(*) FROM pending_object_deletes", as: Int64.self) == 0)

            let bundles = try await BundleCheck.verifyAllBundles(harness)
            #expect(bundles.memberCount == rows.filter { $0.state == "archived" }.count - 1)
            let single = try #require(rows.first { $0.path == "video-export.bin" })
            let stored = try await harness.archive.getBytes(try #require(single.storageKey), limit: 8 << 20)
            #expect(stored == files["video-export.bin"])
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE bundle_id IS NOT NULL AND state = 'archived'", as: Int64.self) == Int64(bundles.memberCount))

            let export = try await harness.archive.getBytes(CatalogExport.key)
            let lines = try BundleCheck.gunzipLines(export, directory: harness.work.path)
            #expect(lines.first?.contains("personal-backup-catalog/1") == true)
            #expect(lines.filter { $0.contains("\"type\": \"file\"") }.count == files.count)
            #expect(!lines.contains { $0.contains("lease_owner") || $0.contains("signed_download_url") })
        }
    }

    @Test("moto S3: data in DEEP_ARCHIVE, manifests and export in STANDARD, verified after a restore")
    func s3DeepArchive() async throws {
        try await PipelineHarness.with(.s3) { harness in
            _ = try Self.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            let result = try await harness.archiveOnce(["--small-file-threshold", "1MiB"])
            #expect(result.status == 0, "\(result.output)")
            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" || $0.state == "duplicate" })
            for key in Set(rows.compactMap(\.storageKey)) {
                let info = try #require(try await harness.archive.head(key))
                #expect(info.storageClassName == "DEEP_ARCHIVE", "\(key)")
                #expect(info.restore == .archived)
            }
            for manifest in try await PipelineHarness.allKeys(harness.archive, prefix: "bundles/") where manifest.hasSuffix(".manifest.json") {
                #expect(try await harness.archive.head(manifest)?.storageClassName == "STANDARD")
            }
            #expect(try await harness.archive.head(CatalogExport.key)?.storageClassName == "STANDARD")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            // Deep Archive data cannot be read until restored; after a restore, the bundles match their manifests.
            let bundles = try await BundleCheck.verifyAllBundles(harness, restoreFirst: true)
            #expect(bundles.bundleCount >= 1)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE signed_download_url IS NOT NULL", as: Int64.self) == 0)
        }
    }

    @Test("the same files from two sources are stored once; later sources point at the archived copy")
    func duplicatesAcrossSources() async throws {
        try await PipelineHarness.with(.file) { harness in
            let files = try Self.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 1").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            let before = try await PipelineHarness.allKeys(harness.archive).filter { !$0.hasPrefix("catalog/") }
            #expect(try await harness.upload(label: "DVD 2 (copy)").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            let after = try await PipelineHarness.allKeys(harness.archive).filter { !$0.hasPrefix("catalog/") }
            #expect(before == after, "nothing new stored for a copy of the same disc")
            let second = try await harness.scalar("""
                SELECT count(*) FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.label = 'DVD 2 (copy)' AND f.state = 'duplicate'
                  AND (SELECT state FROM objectstoragefiles h WHERE h.id = f.duplicate_of) IN ('archived', 'staged')
                """, as: Int64.self)
            #expect(second == Int64(files.count))
        }
    }

    @Test("rows with the same content staged twice: one is archived, the others become duplicates of it")
    func archiverDedupe() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("a.txt", "same content\n")
            #expect(try await harness.upload(label: "one").status == 0)
            // Make the second and third rows look like content that reached staging independently (as after a failed
            // holder): same hash, their own staging objects.
            let rows = try await harness.rows()
            let original = try #require(rows.first)
            for index in 2...3 {
                _ = try await harness.staging.put("extra/\(index)", bytes: Array("same content\n".utf8))
                try await harness.execute("INSERT INTO sources (label) VALUES ('copy \(index)')")
                try await harness.execute("""
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key)
                    SELECT id, 'a.txt', 'a.txt', 'regular', 13, '\(original.hash!)', 'staged', 'staging', 'extra/\(index)'
                    FROM sources WHERE label = 'copy \(index)'
                    """)
            }
            #expect(try await harness.archiveOnce().status == 0)
            let states = try await harness.rows().map(\.state).sorted()
            #expect(states == ["archived", "duplicate", "duplicate"])
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state = 'archived'", as: Int64.self) == 1)
        }
    }

    @Test("a staging copy whose bytes changed fails for good with a clear error, and nothing wrong is archived")
    func corruptStagingCopy() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("letter.txt", "the original words\n")
            #expect(try await harness.upload(label: "one").status == 0)
            let row = try #require(try await harness.rows().first)
            _ = try await harness.staging.put(try #require(row.storageKey), bytes: Array("the altered words!\n".utf8))
            let result = try await harness.archiveOnce()
            #expect(result.status == 0)
            let after = try #require(try await harness.rows().first)
            #expect(after.state == "failed")
            #expect(after.error?.contains("SHA-256") == true, "\(after.error ?? "")")
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state = 'archived'", as: Int64.self) == 0)
        }
    }

    @Test("SIGTERM: the worker stops claiming, records that it stopped and exits 0")
    func gracefulShutdown() async throws {
        try await PipelineHarness.with(.file) { harness in
            let worker = try Program.start("archiver", ["run", "--poll-seconds", "0.2"], environment: harness.environment)
            var registered = false
            for _ in 0..<100 where !registered {
                try await Task.sleep(for: .milliseconds(100))
                registered = (try? await harness.scalar("SELECT count(*) FROM workers WHERE role = 'archiver'", as: Int64.self)) == 1
            }
            #expect(registered)
            worker.signal(SIGTERM)
            let result = try await worker.wait()
            #expect(result.status == 0, "\(result.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM workers WHERE stopped_at IS NOT NULL AND stop_reason = 'stopped'", as: Int64.self) == 1)
        }
    }

    @Test("logs: JSON lines when not on a terminal (with dotted metadata keys), readable lines when asked")
    func jsonLogs() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("a.txt", "one file\n")
            #expect(try await harness.upload(label: "logs").status == 0)
            let json = try await harness.archiveOnce()
            #expect(json.status == 0)
            let lines = json.output.split(separator: "\n").filter { !$0.isEmpty }
            #expect(!lines.isEmpty)
            var messages: [String] = []
            for line in lines {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                #expect(object["time"] is String && object["level"] is String && object["logger"] as? String == "personal-backup.archiver")
                messages.append(object["message"] as? String ?? "")
                if object["message"] as? String == "worker started" { #expect(object["worker.role"] as? String == "archiver") }
                if object["message"] as? String == "bundle archived" { #expect(object["bundle.members"] as? String == "1") }
            }
            #expect(messages.contains("worker started") && messages.contains("bundle archived"))
            let text = try await harness.archiveOnce([], environment: ["BACKUP_LOG_FORMAT": "text"])
            #expect(text.output.contains("worker started") && !text.output.hasPrefix("{"))
            let wrong = try await harness.archiveOnce([], environment: ["BACKUP_LOG_FORMAT": "yaml"])
            #expect(wrong.status == 2 && wrong.output.contains("BACKUP_LOG_FORMAT"))
        }
    }

    @Test("a duplicate of a file that fails for good fails too; uploading again brings both to the archive")
    func duplicateOfFailedHolder() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("letter.txt", "the original words\n")
            #expect(try await harness.upload(label: "disc 1").status == 0)
            #expect(try await harness.upload(label: "disc 2").status == 0)
            let rows = try await harness.rows()
            let holder = try #require(rows.first { $0.state == "staged" })
            let copy = try #require(rows.first { $0.state == "duplicate" })
            #expect(copy.duplicateOf == holder.id)
            // The holder's staging copy goes bad: it fails for good, and its duplicate must not stay "done".
            _ = try await harness.staging.put(try #require(holder.storageKey), bytes: Array("the altered words!\n".utf8))
            #expect(try await harness.archiveOnce().status == 0)
            let failed = try await harness.rows()
            #expect(failed.allSatisfy { $0.state == "failed" }, "\(failed.map { ($0.id, $0.state, $0.error) })")
            #expect(failed.first { $0.id == copy.id }?.error?.contains("file \(holder.id)") == true)
            // The disc is still there: uploading again re-sends the content into the same rows, and it is archived.
            #expect(try await harness.upload(label: "disc 1").status == 0)
            #expect(try await harness.upload(label: "disc 2").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            let after = try await harness.rows()
            #expect(after.count == 2)
            #expect(Set(after.map(\.state)) == ["archived", "duplicate"], "\(after.map { ($0.id, $0.state, $0.error) })")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
        }
    }
}
