import Catalog
import Foundation
import ObjectStore
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// The spool with every kind of source (issue 23's remaining gaps), on the real stack (PostgreSQL, moto with SigV4):
/// `uploader image --spool`, an ISO file and a git code tree given to `upload --spool`, the disc loop keeping a
/// DVD-Video as an image into the spool, and the sender's sweep of files no row names.
@Suite("spool: images, ISO files, code trees, the disc loop's images, leftovers", .serialized)
struct SpoolSourcesTests {
    static func spool(_ harness: PipelineHarness) -> String { harness.work.path + "/spool" }

    /// Waits (up to a minute) until a running command's output contains `text`.
    static func waitFor(_ text: String, in running: Subprocess.Running) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if running.outputSoFar().contains(text) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Spools one file of `size` bytes under its own source, so that the spool is not empty.
    static func spoolOtherFile(_ harness: PipelineHarness, size: Int, seed: UInt64) async throws {
        let other = harness.work.path + "/other-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: other + "/letter.bin", contents: Data(PipelineHarness.bytes(count: size, seed: seed))))
        let upload = try await harness.upload(label: "Other \(seed)", path: other, extra: ["--spool", spool(harness)])
        #expect(upload.status == 0, "\(upload.output)")
    }

    /// Runs a sender, gives the waiting reader five seconds to say it goes on, and again until it does; then waits
    /// for the reader to finish. No sender runs after that, so what the reader stores afterwards stays spooled.
    static func sendUntilReadingGoesOn(_ running: Subprocess.Running, _ harness: PipelineHarness) async throws -> Subprocess.Result {
        var runs = 0
        while !running.outputSoFar().contains("reading goes on"), runs < 20 {
            let sent = try await sendPlain(harness)
            #expect(sent.status == 0, "\(sent.output)")
            runs += 1
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline, !running.outputSoFar().contains("reading goes on") {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return try await running.wait()
    }

    static func sendPlain(_ harness: PipelineHarness) async throws -> Subprocess.Result {
        try await Program.run("uploader", ["send", "--spool", spool(harness)], environment: harness.environment)
    }

    @Test("uploader image --spool (BACKUP_SPOOL_DIR, --spool-limit): reading waits while the spool is full, the image larger than the limit goes in once it is otherwise empty; image and map spooled, nothing in staging, not safe; sent, archived, restored byte for byte")
    func imageIntoTheSpool() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let image = harness.work.path + "/disc13.iso"
            try await DiscLoopTests.makeDisc(image, volume: "DVD_13", files: [
                "video/holiday.bin": PipelineHarness.bytes(count: 3_000_000, seed: 31), "notes.txt": Array("holiday\n".utf8),
            ], in: harness)
            let imageBytes = try #require(FileManager.default.contents(atPath: image))
            try await Self.spoolOtherFile(harness, size: 600_000, seed: 32)

            // The spool from the environment, the limit on the command line: the image (3 MB) does not fit beside the
            // letter under 1 MB, so reading waits; once a sender empties the spool, the image goes in whole.
            let running = try Program.start(
                "uploader", ["image", image, "--label", "DVD 13", "--spool-limit", "1M"],
                environment: harness.environment.merging(["BACKUP_SPOOL_DIR": Self.spool(harness)]) { $1 })
            #expect(try await Self.waitFor("spool full", in: running), "\(running.outputSoFar())")
            try await Task.sleep(for: .seconds(1))
            #expect(try await harness.rows().allSatisfy { $0.kind != "disc_image" }, "no image row while reading waits")
            let finished = try await Self.sendUntilReadingGoesOn(running, harness)
            #expect(finished.status == 0, "\(finished.output)")
            #expect(finished.output.contains("reading goes on"), "\(finished.output)")
            #expect(finished.output.contains("image disc13.iso of \(image): spooled"), "\(finished.output)")
            #expect(finished.output.contains("DVD 13 is read; you may eject it"), "\(finished.output)")

            let row = try #require(try await harness.rows().first { $0.kind == "disc_image" })
            #expect(row.state == "spooled" && row.storage == "spool" && row.hash == PipelineHarness.sha256(Array(imageBytes)))
            let key = try #require(row.storageKey)
            #expect(SpoolTests.spoolFiles(Self.spool(harness)) == [key, key + ".map"], "the image and its map wait in the spool")
            #expect(!(try await PipelineHarness.allKeys(harness.staging)).contains(key), "the image is not in staging")
            #expect(try await harness.sourceState("DVD 13")?.hasPrefix("read, waiting to send") == true)
            let early = try await Program.run("uploader", ["audit", "--source", "DVD 13"], environment: harness.environment)
            #expect(early.status == 1, "\(early.output)")

            let sent = try await SpoolTests.send(harness)
            #expect(sent.status == 0, "\(sent.output)")
            #expect(SpoolTests.sentKeys(sent.output) == [key])
            #expect(SpoolTests.spoolFiles(Self.spool(harness)).isEmpty, "image and map left the spool")
            #expect(try await harness.stagedHash(key) == row.hash)
            #expect(try await PipelineHarness.allKeys(harness.staging).contains(key + ".map"), "the map went to staging with the image")
            #expect(try await harness.rows().first { $0.id == row.id }?.state == "staged")

            let archived = try await harness.archiveOnce([], environment: SpoolTests.standard)
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.rows().first { $0.id == row.id }?.state == "archived")
            let restore = try await harness.restoreSource("DVD 13", environment: SpoolTests.standard)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(restore.files["DVD 13/disc13.iso"] == Array(imageBytes), "the image restored byte for byte")
            let audit = try await Program.run("uploader", ["audit", "--source", "DVD 13"], environment: harness.environment.merging(SpoolTests.standard) { $1 })
            #expect(audit.status == 0, "\(audit.output)")
        }
    }

    @Test("an ISO file given to upload --spool: its members are spooled, also one hashed first into a work file because content of its size is stored (that one waits for room under --spool-limit too); sent, archived, restored byte for byte")
    func isoFileIntoTheSpool() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let size = 1_000_000
            try await Self.spoolOtherFile(harness, size: size, seed: 41)
            let files: [String: [UInt8]] = [
                "a small.txt": Array("small\n".utf8),
                "b same size.bin": PipelineHarness.bytes(count: size, seed: 42),  // the size of the letter, other bytes
            ]
            let image = harness.work.path + "/disc.iso"
            try await DiscLoopTests.makeDisc(image, volume: "DATA", files: files, in: harness)
            let running = try Program.start(
                "uploader", ["upload", image, "--label", "ISO", "--json", "--spool", Self.spool(harness), "--spool-limit", "\(size * 3 / 2)"],
                environment: harness.environment)
            // The member of the letter's size is hashed into a work file first; its write into the spool must still
            // reserve its room, so it waits beside the letter.
            #expect(try await Self.waitFor("spool full", in: running), "\(running.outputSoFar())")
            try await Task.sleep(for: .seconds(1))
            #expect(try await harness.rows().allSatisfy { $0.path != "b same size.bin" }, "the member waits for room")
            let finished = try await Self.sendUntilReadingGoesOn(running, harness)
            #expect(finished.status == 0, "\(finished.output)")

            // The small member went into the spool before the other waited, so the sender that made room sent it on.
            let isoRows = try await harness.rows().filter { files[$0.path] != nil }
            #expect(isoRows.count == files.count && isoRows.allSatisfy { ["spooled", "staged"].contains($0.state) }, "\(isoRows.map { "\($0.path) \($0.state)" })")
            #expect(isoRows.first { $0.path == "b same size.bin" }.map { $0.state == "spooled" && $0.storage == "spool" } == true)
            let waited = try #require(isoRows.first { $0.path == "b same size.bin" }?.storageKey)
            #expect(!(try await PipelineHarness.allKeys(harness.staging)).contains(waited), "the member that waited is not in staging")
            let sent = try await SpoolTests.send(harness)
            #expect(sent.status == 0, "\(sent.output)")
            #expect(SpoolTests.spoolFiles(Self.spool(harness)).isEmpty)
            let archived = try await harness.archiveOnce([], environment: SpoolTests.standard)
            #expect(archived.status == 0, "\(archived.output)")
            let restore = try await harness.restoreSource("ISO", environment: SpoolTests.standard)
            #expect(restore.status == 0, "\(restore.output)")
            for (path, bytes) in files { #expect(restore.files["ISO/" + path] == bytes, "\(path) restored byte for byte") }
        }
    }

    @Test("a git code tree given to upload --spool --spool-limit: the repository's file (kept whole) is spooled and waits for room like any file; sent, archived, the repository restored")
    func codeTreeIntoTheSpool() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try await Self.spoolOtherFile(harness, size: 300_000, seed: 51)
            let project = harness.source.path + "/project"
            try harness.write("project/README.md", "a project\n")
            _ = try harness.write("project/big.bin", PipelineHarness.bytes(count: 600_000, seed: 52))
            let blob = try await blocking { () throws -> String in
                try TestGit.run(["init", "-q"], in: project)
                try TestGit.run(["add", "README.md", "big.bin"], in: project)
                try TestGit.run(["commit", "-q", "-m", "first"], in: project)
                return try TestGit.run(["rev-parse", "HEAD:big.bin"], in: project).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // Only the repository holds the big blob now: its file (over 600 KB) cannot fit beside the letter under 500 KB.
            try FileManager.default.removeItem(atPath: project + "/big.bin")
            let running = try harness.startUpload(label: "Code", extra: ["--spool", Self.spool(harness), "--spool-limit", "500000"])
            #expect(try await Self.waitFor("spool full", in: running), "\(running.outputSoFar())")
            let finished = try await Self.sendUntilReadingGoesOn(running, harness)
            #expect(finished.status == 0, "\(finished.output)")

            let repository = try #require(try await harness.rows().first { $0.path == "project/.git" })
            #expect(repository.state == "spooled" && repository.storage == "spool" && repository.size > 600_000, "\(repository)")
            #expect(FileManager.default.fileExists(atPath: Self.spool(harness) + "/" + (repository.storageKey ?? "-")))
            let sent = try await SpoolTests.send(harness)
            #expect(sent.status == 0, "\(sent.output)")
            let archived = try await harness.archiveOnce([], environment: SpoolTests.standard)
            #expect(archived.status == 0, "\(archived.output)")
            let directory = harness.work.path + "/restored-code"
            let restore = try await Program.run(
                "uploader", ["restore", "--source", "Code", "--to", directory], environment: harness.environment.merging(SpoolTests.standard) { $1 })
            #expect(restore.status == 0, "\(restore.output)")
            let restoredBlob = try await blocking { try TestGit.run(["rev-parse", "HEAD:big.bin"], in: directory + "/Code/project") }
            #expect(restoredBlob.trimmingCharacters(in: .whitespacesAndNewlines) == blob, "the repository is back with its history")
        }
    }

    @Test("the disc loop with --spool on a DVD-Video: files and image (with its map) go into the spool, nothing into staging, the disc ejected; sent, archived, the image restored byte for byte, both sources safe")
    func discLoopSpoolsTheImage() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files: [String: [UInt8]] = [
                "VIDEO_TS/VIDEO_TS.IFO": PipelineHarness.bytes(count: 12_288, seed: 61),
                "VIDEO_TS/VIDEO_TS.BUP": PipelineHarness.bytes(count: 12_288, seed: 61),
                "extra/photo.jpg": PipelineHarness.bytes(count: 400_000, seed: 62),
            ]
            let drive = harness.work.path + "/drive.iso"
            try await DiscLoopTests.makeDisc(drive, volume: "SCHOOL_PLAY", files: files, in: harness)
            let imageBytes = try #require(FileManager.default.contents(atPath: drive))
            let queue = harness.work.path + "/queue"
            try FileManager.default.createDirectory(atPath: queue, withIntermediateDirectories: true)
            let log = harness.work.path + "/eject.log"
            let result = try await DiscLoopTests.discs(
                [drive, "--once", "--json", "--poll-seconds", "0.2", "--eject-command", try DiscLoopTests.ejectScript(queue: queue, log: log, in: harness),
                 "--spool", Self.spool(harness)], harness)
            #expect(result.status == 0, "\(result.output)")
            #expect(DiscLoopTests.events(result.output, "disc_done").map { $0["labels"] as? [String] ?? [] } == [["SCHOOL PLAY #1", "SCHOOL PLAY #1 (image)"]])
            #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") == "eject \(drive)\n", "the disc was ejected")

            let image = try #require(try await harness.rows().first { $0.kind == "disc_image" })
            #expect(image.state == "spooled")
            let states = try await harness.scalar("SELECT string_agg(DISTINCT state, ',') FROM objectstoragefiles WHERE duplicate_of IS NULL", as: String.self)
            #expect(states == "spooled", "nothing of the disc went straight to staging")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            #expect(SpoolTests.spoolFiles(Self.spool(harness)).contains((image.storageKey ?? "-") + ".map"))

            let sent = try await SpoolTests.send(harness)
            #expect(sent.status == 0, "\(sent.output)")
            #expect(SpoolTests.spoolFiles(Self.spool(harness)).isEmpty, "everything, the map too, left the spool: \(SpoolTests.spoolFiles(Self.spool(harness)))")
            let archived = try await harness.archiveOnce()
            #expect(archived.status == 0, "\(archived.output)")
            let archivedRows = try await harness.rows()
            #expect(archivedRows.allSatisfy { $0.state == "archived" || $0.state == "duplicate" }, "\(archivedRows.map { "\($0.path) \($0.state) \($0.error ?? "")" })")
            let back = try await DiscLoopTests.restore("SCHOOL PLAY #1 (image)", in: harness)
            #expect(FileManager.default.contents(atPath: back + "/SCHOOL PLAY.iso") == imageBytes, "the image restored byte for byte")
            let filesBack = try await DiscLoopTests.restore("SCHOOL PLAY #1", in: harness)
            for (path, bytes) in files { #expect(FileManager.default.contents(atPath: filesBack + "/" + path).map(Array.init) == bytes, "\(path)") }
            for label in ["SCHOOL PLAY #1", "SCHOOL PLAY #1 (image)"] {
                let audit = try await Program.run("uploader", ["audit", "--source", label, "--json"], environment: harness.environment)
                #expect(audit.status == 0 && audit.output.contains("\"safe\":true"), "\(label): \(audit.output)")
            }
        }
    }

    @Test("leftovers: send removes spool files no row names once they are an hour old, and day-old temporary files; never a file a row or a pending upload names, however old (an uploader SIGKILLed between a large file's write and its row); young ones stay")
    func orphansAreSwept() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let spool = Self.spool(harness)
            _ = try harness.write("small.bin", PipelineHarness.bytes(count: 50_000, seed: 71))
            _ = try harness.write("large.bin", PipelineHarness.bytes(count: 20_000_000, seed: 72))
            // A real kill: the uploader dies after the large file is in the spool and before its row is written.
            let killed = try await harness.upload(extra: ["--spool", spool, "--concurrency", "1"], environment: ["BACKUP_UPLOADER_TEST_CRASH_AFTER_UPLOAD": "1"])
            #expect(killed.status == 128 + SIGKILL, "\(killed.output)")
            let pendingKey = try #require(try await harness.scalar("SELECT staging_key FROM pending_uploads", as: String.self))
            #expect(FileManager.default.fileExists(atPath: spool + "/" + pendingKey), "the killed uploader's file is in the spool, named only by its pending upload")
            // The small file may also have been written and not yet recorded when the kill came (its row waits for a
            // batch): that copy is a young orphan too, and stays like the planted one.
            let named = Set(try await harness.rows().compactMap(\.storageKey) + [pendingKey])
            let killedOrphans = SpoolTests.spoolFiles(spool).filter { !named.contains($0) }

            // Planted leftovers: files no row names (one old, one young) and temporary files of writers (one old, one young).
            let sourceID = try #require(try await harness.scalar("SELECT id FROM sources WHERE label = 'DVD 12'", as: Int64.self))
            let hourAgo = Date().addingTimeInterval(-2 * 3600)
            let dayAgo = Date().addingTimeInterval(-2 * 86_400)
            func plant(_ path: String, _ date: Date?) throws {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                #expect(FileManager.default.createFile(atPath: path, contents: Data(PipelineHarness.bytes(count: 1000, seed: 73))))
                if let date { try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path) }
            }
            let oldOrphan = "sources/\(sourceID)/\(UUID().uuidString.lowercased())"
            let youngOrphan = "sources/\(sourceID)/\(UUID().uuidString.lowercased())"
            try plant(spool + "/" + oldOrphan, hourAgo)
            try plant(spool + "/" + youngOrphan, nil)
            try plant(spool + "/.objectstore/tmp/" + UUID().uuidString, dayAgo)
            let youngTemporary = spool + "/.objectstore/tmp/" + UUID().uuidString
            try plant(youngTemporary, hourAgo)
            // Named files, however old, are never touched: the pending upload's and the spooled rows'.
            try FileManager.default.setAttributes([.modificationDate: dayAgo], ofItemAtPath: spool + "/" + pendingKey)
            let spooled = try await harness.rows().filter { $0.state == "spooled" }  // the small file, if it went first
            for row in spooled { try FileManager.default.setAttributes([.modificationDate: dayAgo], ofItemAtPath: spool + "/" + (row.storageKey ?? "-")) }

            let sweep = try await Self.sendPlain(harness)
            #expect(sweep.status == 0, "\(sweep.output)")
            #expect(sweep.output.contains("removed 2 orphaned spool file(s)"), "\(sweep.output)")
            #expect(!FileManager.default.fileExists(atPath: spool + "/" + oldOrphan))
            #expect(FileManager.default.fileExists(atPath: spool + "/" + youngOrphan), "a young file may be about to get its row")
            #expect(FileManager.default.fileExists(atPath: youngTemporary), "a temporary file is left for a day")
            #expect(FileManager.default.fileExists(atPath: spool + "/" + pendingKey), "the pending upload's file stays")
            #expect(try await harness.rows().filter { $0.state == "staged" }.count == spooled.count, "the spooled rows were sent as usual")

            // The same upload again continues the large file; then everything is sent.
            let again = try await harness.upload(extra: ["--spool", spool])
            #expect(again.status == 0, "\(again.output)")
            let last = try await SpoolTests.send(harness)
            #expect(last.status == 0, "\(last.output)")
            let rows = try await harness.rows()
            #expect(rows.count == 2 && rows.allSatisfy { $0.state == "staged" }, "\(rows.map { "\($0.path) \($0.state)" })")
            for row in rows { #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash, "\(row.path)") }
            #expect(SpoolTests.spoolFiles(spool) == ([youngOrphan] + killedOrphans).sorted(),
                    "only the young unnamed files are left: \(SpoolTests.spoolFiles(spool)), the killed run's \(killedOrphans)")
        }
    }
}
