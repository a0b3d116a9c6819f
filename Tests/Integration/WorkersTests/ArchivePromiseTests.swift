import Catalog
import Foundation
import Logging
import Media
import ObjectStore
import PipelineCore
import PostgresNIO
import Testing
import TestSupport
import SystemIO
@testable import ArchiveStep
@testable import JobQueue
@testable import TranscodeStep

/// The paths by which a file could be reported archived while its content exists nowhere (issue "Nothing lost,
/// nothing reported done that is not"). Each test failed before its fix.
@Suite("the archive promise")
struct ArchivePromiseTests {
    static let standard = ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]
    static let options = ["--small-file-threshold", "1MiB", "--delete-grace-days", "0"]

    /// Runs `uploader restore --source LABEL` into a fresh directory and returns the restored files by path.
    static func restore(_ harness: PipelineHarness, source label: String) async throws -> (status: Int32, output: String, files: [String: [UInt8]]) {
        try await harness.restoreSource(label, environment: standard)
    }

    static func requestDelete(_ harness: PipelineHarness, fileID: Int64) async throws {
        try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(fileID), now() - interval '1 second')")
    }

    static func sourceState(_ harness: PipelineHarness, _ label: String) async throws -> String? {
        try await harness.sourceState(label)
    }

    @Test("content deleted and swept, then uploaded again from another source: stored again, archived, restorable")
    func deletedContentIsStoredAgain() async throws {
        try await PipelineHarness.with(.file) { harness in
            let photo = PipelineHarness.bytes(count: 5000, seed: 7)
            try harness.write("photo.jpg", photo)
            #expect(try await harness.upload(label: "A").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let original = try #require(try await harness.rows().first { $0.path == "photo.jpg" })
            try await Self.requestDelete(harness, fileID: original.id)
            let swept = try await harness.archiveOnce(Self.options, environment: Self.standard)
            #expect(swept.status == 0, "\(swept.output)")
            #expect(try await harness.scalar("SELECT deleted_at IS NOT NULL FROM objectstoragefiles WHERE id = \(original.id)", as: Bool.self) == true)

            // The same photo on another disc, and the same path of the first disc uploaded again.
            #expect(try await harness.upload(label: "B").status == 0)
            #expect(try await harness.upload(label: "A").status == 0)
            let archived = try await harness.archiveOnce(Self.options, environment: Self.standard)
            #expect(archived.status == 0, "\(archived.output)")
            let live = try await harness.rows().filter { $0.id != original.id }
            #expect(live.count == 2, "\(live.map { ($0.path, $0.state, $0.duplicateOf) })")
            #expect(live.allSatisfy { $0.duplicateOf != original.id }, "a live row points at the deleted one")
            #expect(live.contains { $0.state == "archived" })
            for label in ["A", "B"] {
                #expect(try await Self.sourceState(harness, label) == "archived")
                let restored = try await Self.restore(harness, source: label)
                #expect(restored.status == 0, "\(restored.output)")
                #expect(restored.files["\(label)/photo.jpg"] == photo, "\(label): \(restored.files.keys.sorted())")
            }
        }
    }

    @Test("a disc uploaded again while a delete of one of its files is pending: that file is stored again and stays archived")
    func uploadAgainWhileDeletePending() async throws {
        try await PipelineHarness.with(.file) { harness in
            let photo = PipelineHarness.bytes(count: 4000, seed: 12)
            try harness.write("photo.jpg", photo)
            #expect(try await harness.upload(label: "A").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let first = try #require(try await harness.rows().first)
            try await Self.requestDelete(harness, fileID: first.id)
            // The request is not carried out yet when the disc comes again: the file is not "unchanged".
            #expect(try await harness.upload(label: "A").status == 0)
            #expect(try await harness.rows().count == 2)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            #expect(try await harness.scalar("SELECT deleted_at IS NOT NULL FROM objectstoragefiles WHERE id = \(first.id)", as: Bool.self) == true)
            #expect(try await Self.sourceState(harness, "A") == "archived")
            #expect(try await Self.audit(harness, ["--source", "A"]).status == 0)
            let restored = try await Self.restore(harness, source: "A")
            #expect(restored.files["A/photo.jpg"] == photo, "\(restored.output)")
        }
    }

    @Test("deleting the holder of content others use hands it over: the duplicate becomes the holder, dedupe and restore follow it")
    func holderDeletedHandsOver() async throws {
        try await PipelineHarness.with(.file) { harness in
            let photo = PipelineHarness.bytes(count: 6000, seed: 8)
            try harness.write("photo.jpg", photo)
            #expect(try await harness.upload(label: "A").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            #expect(try await harness.upload(label: "B").status == 0)
            let rows = try await harness.rows()
            let holder = try #require(rows.first { $0.state == "archived" })
            let copy = try #require(rows.first { $0.state == "duplicate" })
            #expect(copy.duplicateOf == holder.id)

            try await Self.requestDelete(harness, fileID: holder.id)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let heir = try #require(try await harness.rows().first { $0.id == copy.id })
            #expect(heir.state == "archived", "\(heir.state)")
            #expect(heir.duplicateOf == nil)
            let outcome = try await harness.scalar("SELECT outcome FROM objectstoragedeletelog WHERE file_id = \(holder.id)", as: String.self)
            #expect(outcome?.contains("handed over to file \(copy.id)") == true, "\(outcome ?? "nil")")

            // A third disc with the photo is a duplicate of the heir, and both restore.
            #expect(try await harness.upload(label: "C").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let third = try #require(try await harness.rows().first { $0.id != holder.id && $0.id != copy.id })
            #expect(third.state == "duplicate" && third.duplicateOf == copy.id, "\(third.state) of \(String(describing: third.duplicateOf))")
            for label in ["B", "C"] {
                let restored = try await Self.restore(harness, source: label)
                #expect(restored.status == 0, "\(restored.output)")
                #expect(restored.files["\(label)/photo.jpg"] == photo)
            }
            // Once nobody uses it, the content goes: the bundle is dead and removed.
            let bundleKey = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE id = \(copy.id)", as: String.self))
            try await Self.requestDelete(harness, fileID: copy.id)
            try await Self.requestDelete(harness, fileID: third.id)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            #expect(try await harness.archive.head(bundleKey) == nil)
        }
    }

    @Test("a duplicate recorded without bytes whose holder is deleted before the row is written is sent after all")
    func holderDeletedBetweenLookUpAndRecord() async throws {
        try await TestDatabase.withFresh { _, client in
            let logger = TestEnvironment.logger
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let sourceA = try await catalog.openSource(label: "A", metadata: [:], note: nil, origin: "test")
            let sourceB = try await catalog.openSource(label: "B", metadata: [:], note: nil, origin: "test")
            let hash = String(repeating: "ab", count: 32)
            func file(_ source: Int64) -> IngestedFile {
                IngestedFile(sourceID: source, path: "photo.jpg", rawPath: nil, name: "photo.jpg", sizeBytes: 10, modifiedAt: nil, kind: .regular)
            }
            let first = try await catalog.record(file(sourceA), hash: hash, stagingKey: "sources/1/a", pendingID: nil)
            guard case .staged(let holderID, _) = first else { Issue.record("\(first)"); return }
            // The uploader saw the holder (hash known, nothing sent); then the holder's delete was carried out.
            #expect(try await catalog.holder(ofHash: hash) == holderID)
            _ = try await client.query("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(holderID), now() - interval '1 day')", logger: logger)
            let processed = try await DeleteRequests(client: client, logger: logger).processDue(grace: .seconds(0))
            #expect(processed.count == 1)
            #expect(try await catalog.record(file(sourceB), hash: hash, stagingKey: nil, pendingID: nil) == .needsContent)
            #expect(try await catalog.holder(ofHash: hash) == nil)
            // With the bytes it is stored, not a duplicate of the deleted row.
            let stored = try await catalog.record(file(sourceB), hash: hash, stagingKey: "sources/2/b", pendingID: nil)
            guard case .staged = stored else { Issue.record("\(stored)"); return }
            // And the deleted path of A, coming again, is a new version, not "unchanged".
            let again = try await catalog.record(file(sourceA), hash: hash, stagingKey: "sources/1/c", pendingID: nil)
            guard case .duplicate(_, let version, _) = again else { Issue.record("\(again)"); return }
            #expect(version == 2)
        }
    }

    @Test("a rewritten bundle is kept until every member it held is archived again")
    func rewrittenBundleKeptUntilMembersArchived() async throws {
        try await PipelineHarness.with(.file) { harness in
            for index in 0..<3 { try harness.write("docs/\(index).txt", "document \(index) " + String(repeating: "x", count: 2000 + index)) }
            #expect(try await harness.upload(label: "docs").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let rows = try await harness.rows()
            let bundleID = try #require(try await harness.scalar("SELECT bundle_id FROM objectstoragefiles WHERE path = 'docs/0.txt'", as: Int64.self))
            let bundleKey = try #require(try await harness.scalar("SELECT archive_key FROM bundles WHERE id = \(bundleID)", as: String.self))
            for row in rows where row.path != "docs/2.txt" { try await Self.requestDelete(harness, fileID: row.id) }
            let survivor = try #require(rows.first { $0.path == "docs/2.txt" })

            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let logger = TestEnvironment.logger
                _ = try await DeleteRequests(client: client, logger: logger).processDue(grace: .seconds(0))
                #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(bundleID)", as: String.self) == "rewriting")
                // The rewrite's catalog step: the live member back to staging.
                let key = "rewrite/\(bundleID)/\(survivor.id)"
                _ = try await harness.staging.put(key, bytes: Array(("document 2 " + String(repeating: "x", count: 2002)).utf8))
                let catalog = ArchiveCatalog(client: client, logger: logger)
                #expect(try await catalog.restage(bundleID: bundleID, stagingKeys: [survivor.id: key]) == 1)
                #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(bundleID)", as: String.self) == "replaced")
                #expect(try await harness.scalar("SELECT count(*) FROM pending_object_deletes WHERE storage_key = '\(bundleKey)'", as: Int64.self) == 0)
                // Not archived again yet: the old bundle stays.
                #expect(try await catalog.retireUnusedBundles().isEmpty)
            }
            #expect(try await harness.archive.head(bundleKey) != nil)
            let archived = try await harness.archiveOnce(Self.options, environment: Self.standard)
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.rows().first { $0.id == survivor.id }?.state == "archived")
            #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(bundleID)", as: String.self) == "deleted")
            #expect(try await harness.archive.head(bundleKey) == nil)
            let restored = try await Self.restore(harness, source: "docs")
            #expect(restored.files["docs/docs/2.txt"].map { String(decoding: $0, as: UTF8.self) } == "document 2 " + String(repeating: "x", count: 2002))
        }
    }

    @Test("a bundle none of whose members is live any more is removed by the sweep")
    func deadBundleRemoved() async throws {
        try await PipelineHarness.with(.file) { harness in
            for index in 0..<2 { try harness.write("notes/\(index).txt", "note \(index)\n") }
            #expect(try await harness.upload(label: "notes").status == 0)
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let bundleKey = try #require(try await harness.scalar("SELECT archive_key FROM bundles WHERE state = 'archived'", as: String.self))
            // Every member gone by a path that did not count them dead (as when all their leases were lost).
            try await harness.execute("UPDATE objectstoragefiles SET deleted_at = now()")
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            #expect(try await harness.scalar("SELECT state FROM bundles WHERE archive_key = '\(bundleKey)'", as: String.self) == "deleted")
            #expect(try await harness.archive.head(bundleKey) == nil)
            #expect(try await harness.archive.head(bundleKey + ".manifest.json") == nil)
        }
    }

    @Test("an object left at a file's archive key with the right size and metadata but other bytes is not reused",
          arguments: [PipelineHarness.Staging.file, .s3])
    func plantedObjectIsNotReused(_ storage: PipelineHarness.Staging) async throws {
        try await PipelineHarness.with(storage) { harness in
            // Deep Archive (the default class): on moto its bytes cannot be read back without a restore, so the check
            // has to rely on what the server computed (checksum or ETag) against the staging copy.
            let film = PipelineHarness.bytes(count: (2 << 20) + 123, seed: 31)
            try harness.write("film.bin", film)
            #expect(try await harness.upload(label: "films").status == 0)
            let row = try #require(try await harness.rows().first)
            let key = "files/\(PipelineHarness.sha256(film).prefix(2))/\(PipelineHarness.sha256(film))-\(row.id).bin"
            // What a dead archiver (or anyone) may have left there: the right size, a metadata claim, wrong bytes.
            var wrong = film
            wrong[1000] ^= 0x55
            _ = try await harness.archive.put(key, bytes: wrong, options: PutOptions(
                storageClass: .deepArchive, metadata: ["sha256": PipelineHarness.sha256(film), "original-sha256": PipelineHarness.sha256(film),
                                                       "file-id": String(row.id)]))
            let archived = try await harness.archiveOnce(["--small-file-threshold", "1MiB"])
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.rows().first?.state == "archived")
            #expect(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE id = \(row.id)", as: String.self) == key)
            // The bytes at the key are the film's now: restore (moto's Deep Archive restores finish at once).
            _ = try? await harness.archive.requestRestore(key, days: 1, tier: .standard)
            let restored = try await Self.restore(harness, source: "films")
            #expect(restored.status == 0, "\(restored.output)")
            #expect(restored.files["films/film.bin"].map(PipelineHarness.sha256) == PipelineHarness.sha256(film))
        }
    }

    @Test("a duplicate of content still on its way is not archived: uploader sources, the pipeline's completion and the watchdog agree")
    func duplicateOfPendingIsNotDone() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("photo.jpg", PipelineHarness.bytes(count: 5000, seed: 9))
            #expect(try await harness.upload(label: "A").status == 0)
            #expect(try await harness.upload(label: "B").status == 0)
            #expect(try await harness.rows().contains { $0.state == "duplicate" })
            #expect(try await Self.sourceState(harness, "B") == "in progress")
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let completion = try await SourceCompletion.read(label: "B", client: client, logger: TestEnvironment.logger)
                #expect(!completion.isFullyArchived && completion.inFlight == 1)
            }
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            #expect(try await Self.sourceState(harness, "B") == "archived")
            // A holder that failed for good takes its duplicate's "done" with it.
            try await harness.execute("UPDATE objectstoragefiles SET state = 'failed', error = 'test: lost' WHERE state = 'archived'")
            #expect(try await Self.sourceState(harness, "B") == "archived with failures")
        }
    }

    @Test("a transcoder that lost its lease cannot overwrite or delete the result another worker recorded")
    func staleTranscoderIsFenced() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            try TranscoderWorkerTests.ffmpeg([
                "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-t", "4", "-c:v", "mpeg2video", "-f", "mpeg",
                harness.source.path + "/tapes/clip.mpg",
            ])
            #expect(try await harness.upload(label: "tapes").status == 0)
            let row = try #require(try await harness.rows().first)
            #expect(row.kind == "video")

            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let logger = TestEnvironment.logger
                let queue = WorkQueue(client: client, logger: logger)
                let (staleWorker, liveWorker) = (UUID(), UUID())
                for worker in [staleWorker, liveWorker] {
                    try await queue.register(workerID: worker, role: .transcoder, host: "test", processID: getpid())
                }
                let stale = try #require(try await queue.claim(.transcode, workerID: staleWorker, limit: 1, lease: .milliseconds(200)).first)
                try await Task.sleep(for: .milliseconds(400))
                let live = try #require(try await queue.claim(.transcode, workerID: liveWorker, limit: 1, lease: .seconds(60)).first)
                #expect(live.leaseToken > stale.leaseToken)

                // Both load the row and read the raw file at once; the live worker (fast preset) records first, the
                // stale one (slow preset) finishes later, puts its result and, refused by the fence, cleans up.
                func handler(preset: String) throws -> TranscodeHandler {
                    var profile = TranscodeProfile.h264
                    profile.preset = preset
                    return try TranscodeHandler(configuration: TranscodeConfiguration(profile: profile, workDirectory: harness.work.path), staging: harness.staging)
                }
                func context(_ worker: UUID) -> JobContext {
                    JobContext(workerID: worker, queue: queue, client: client, logger: logger, leases: LeaseBook())
                }
                let (fast, slow) = (try handler(preset: "ultrafast"), try handler(preset: "veryslow"))
                async let liveOutcome = fast.transcode(live, context: context(liveWorker))
                async let staleOutcome = slow.transcode(stale, context: context(staleWorker))
                #expect(await liveOutcome == .completed)
                let staleResult = await staleOutcome
                #expect(staleResult == .leaseLost, "\(staleResult)")
            }
            let recorded = try #require(try await harness.rows().first)
            #expect(recorded.state == "transcoded")
            let key = try #require(recorded.storageKey)
            let storedHash = try await harness.scalar("SELECT stored_hash FROM objectstoragefiles WHERE id = \(recorded.id)", as: String.self)
            let bytes = try await harness.staging.getBytes(key, limit: 64 << 20)
            #expect(PipelineHarness.sha256(bytes) == storedHash, "the recorded transcode was overwritten or removed")
        }
    }

    static func audit(_ harness: PipelineHarness, _ arguments: [String] = []) async throws -> Subprocess.Result {
        try await Program.run("uploader", ["audit"] + arguments, environment: harness.environment)
    }

    @Test("audit: safe only when every file can be had from the archive alone; damage, loss and unfinished work are listed")
    func auditVerdicts() async throws {
        try await PipelineHarness.with(.file) { harness in
            // Incompressible, so the bundle is stored as a plain tar whose bytes the test can flip.
            for index in 0..<4 { try harness.write("docs/\(index).dat", PipelineHarness.bytes(count: 40_000, seed: 20 + UInt64(index))) }
            try harness.write("film.bin", PipelineHarness.bytes(count: 2 << 20, seed: 11))
            #expect(try await harness.upload(label: "A").status == 0)
            // Uploaded, not archived: the bytes are only in staging, which never counts.
            let early = try await Self.audit(harness, ["--source", "A"])
            #expect(early.status == 1 && early.output.contains("\"safe\":false") && early.output.contains("not archived yet"), "\(early.output)")
            #expect(try await harness.archiveOnce(Self.options, environment: Self.standard).status == 0)
            let clean = try await Self.audit(harness, ["--source", "A"])
            #expect(clean.status == 0 && clean.output.contains("\"safe\":true") && clean.output.contains("\"content_verified\":5"), "\(clean.output)")

            // Bit rot in one bundle member: that member is named, the others of the bundle are not.
            let rows = try await harness.rows()
            let doc = try #require(rows.first { $0.path == "docs/1.dat" })
            let bundleKey = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE id = \(doc.id)", as: String.self))
            let offset = try #require(try await harness.scalar("SELECT bundle_offset FROM objectstoragefiles WHERE id = \(doc.id)", as: Int64.self))
            let compression = try await harness.scalar("SELECT compression FROM bundles WHERE archive_key = '\(bundleKey)'", as: String.self)
            #expect(compression == "none", "the test flips a byte of an uncompressed bundle")
            let bundlePath = harness.work.path + "/archive/" + bundleKey
            var bytes = Array(try #require(FileManager.default.contents(atPath: bundlePath)))
            bytes[Int(offset) + 10] ^= 0xff
            try Data(bytes).write(to: URL(fileURLWithPath: bundlePath))
            let rotten = try await Self.audit(harness, ["--source", "A"])
            #expect(rotten.status == 1 && rotten.output.contains("docs/1.dat") && rotten.output.contains("SHA-256"), "\(rotten.output)")
            // Every verdict is kept for the family pages (source_audits), newest last: early, clean, rotten.
            let kept = try await harness.scalar("""
                SELECT string_agg(a.safe::text || ':' || a.content_verified || ':' || a.problem_count, ',' ORDER BY a.id)
                FROM source_audits a JOIN sources s ON s.id = a.source_id WHERE s.label = 'A'
                """, as: String.self)
            #expect(kept?.hasPrefix("false:0:") == true && kept?.hasSuffix(",true:5:0,false:4:1") == true, "\(kept ?? "none")")
            #expect(!rotten.output.contains("docs/2.dat"), "\(rotten.output)")
            bytes[Int(offset) + 10] ^= 0xff
            try Data(bytes).write(to: URL(fileURLWithPath: bundlePath))
            #expect(try await Self.audit(harness, ["--source", "A"]).status == 0)

            // A file stored alone that vanished from the archive.
            let film = try #require(rows.first { $0.path == "film.bin" })
            let filmKey = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE id = \(film.id)", as: String.self))
            try FileManager.default.moveItem(atPath: harness.work.path + "/archive/" + filmKey, toPath: harness.work.path + "/film.moved")
            let missing = try await Self.audit(harness, ["--source", "A"])
            #expect(missing.status == 1 && missing.output.contains("film.bin") && missing.output.contains("missing from the archive"), "\(missing.output)")
            try FileManager.default.moveItem(atPath: harness.work.path + "/film.moved", toPath: harness.work.path + "/archive/" + filmKey)

            // A duplicate whose holder is not archived (legacy data: a deleted holder still used) is not safe.
            #expect(try await harness.upload(label: "B").status == 0)
            #expect(try await Self.audit(harness, ["--source", "B"]).status == 0)
            try await harness.execute("UPDATE objectstoragefiles SET deleted_at = now() WHERE id = \(film.id)")
            let orphaned = try await Self.audit(harness, ["--source", "B"])
            #expect(orphaned.status == 1 && orphaned.output.contains("deleted: its content may be gone"), "\(orphaned.output)")
            // Every source at once: one verdict each, exit 1 because one is not safe.
            let all = try await Self.audit(harness)
            #expect(all.status == 1 && all.output.contains("\"label\":\"A\",\"problems\":[],\"safe\":true"), "\(all.output)")
        }
    }
}
