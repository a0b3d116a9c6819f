import Catalog
import Crypto
import Foundation
import ObjectStore
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// The real `uploader` (upload, restore, restore-status, ls, sources) and `archiver` programs against real
/// PostgreSQL and moto S3 (Deep Archive, SigV4 enforced) or file:// buckets.
@Suite("restore end to end")
struct RestoreTests {
    /// Compressible letters (one zstd bundle), a "photo" and its copy (a plain tar bundle), an empty file, a
    /// 3 MiB file stored alone.
    static func makeTree(_ harness: PipelineHarness) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for index in 0..<12 {
            files["docs/note \(index).txt"] = Array(String(repeating: "line \(index) of a letter to grandma\n", count: 200).utf8)
        }
        files["photos/ä holiday.jpg"] = [0xFF, 0xD8, 0xFF, 0xE0] + PipelineHarness.bytes(count: 150_000, seed: 7)
        files["photos/copy of holiday.jpg"] = files["photos/ä holiday.jpg"]
        files["empty.txt"] = []
        files["big/video-export.bin"] = PipelineHarness.bytes(count: 3 << 20, seed: 9)
        for (path, bytes) in files { try harness.write(path, bytes) }
        // Modification times with sub-second parts, to see them come back exactly.
        for (index, path) in files.keys.sorted().enumerated() {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_200_000_000.25 + Double(index) * 1000)],
                                                  ofItemAtPath: harness.source.path + "/" + path)
        }
        return files
    }

    static let archiveOptions = ["--small-file-threshold", "200KiB", "--bundle-size", "200KiB"]

    /// Every source file is in `directory/label/…` with the same bytes and modification time.
    static func expectRestored(_ harness: PipelineHarness, _ files: [String: [UInt8]], in directory: String, label: String) throws {
        let restored = try PipelineHarness.files(under: directory + "/" + label)
        #expect(Set(restored.keys) == Set(files.keys))
        for (path, bytes) in files {
            #expect(restored[path] == bytes, "\(path) differs")
            let original = try PipelineHarness.modificationTime(harness.source.path + "/" + path)
            let back = try PipelineHarness.modificationTime(directory + "/" + label + "/" + path)
            #expect(abs(original - back) < 0.000_01, "\(path): mtime \(back), originally \(original)")
        }
    }

    @Test("moto Deep Archive: a whole source restored (zstd bundle, tar bundle, file alone, duplicate, empty file); a second run requests nothing")
    func restoreSourceFromDeepArchive() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files = try Self.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            let archived = try await harness.archiveOnce(Self.archiveOptions)
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state = 'archived' AND compression = 'zstd'", as: Int64.self) == 1)
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state = 'archived' AND compression = 'none'", as: Int64.self) == 1)
            let objects = try #require(try await harness.scalar(
                "SELECT count(DISTINCT archive_key) FROM objectstoragefiles WHERE state = 'archived'", as: Int64.self))
            #expect(objects == 3)

            let directory = restoreDirectory(harness)
            let first = try await harness.restore(["--source", "DVD 12"], to: directory)
            #expect(first.status == 0, "\(first.output)")
            #expect(first.restoreRequests.count == 3, "one request per object: \(first.restoreRequests)")
            #expect(first.files("restored").count == files.count)
            try Self.expectRestored(harness, files, in: directory, label: "DVD 12")
            #expect(try await harness.scalar("SELECT count(*) FROM restore_requests WHERE tier = 'Standard' AND days = 7", as: Int64.self) == 3)
            #expect(!FileManager.default.fileExists(atPath: directory + "/.personal-backup-restore"), "the work directory is removed")

            // A second run finds everything in place: nothing requested, nothing downloaded.
            let second = try await harness.restore(["--source", "DVD 12"], to: directory)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.restoreRequests.isEmpty)
            #expect(second.files("already_present").count == files.count)
            #expect(second.summary["bytes_downloaded"] as? Int == 0)

            let sources = try await harness.uploader(["sources", "--json"])
            #expect(sources.status == 0, "\(sources.output)")
            let source = try #require(sources.events.first)
            #expect(source["label"] as? String == "DVD 12")
            #expect(source["state"] as? String == "archived")
            #expect(source["files"] as? Int == files.count)
            let listing = try await harness.uploader(["ls", "--source", "DVD 12", "--json", "photos/*"])
            #expect(listing.status == 0, "\(listing.output)")
            let lines = listing.events
            #expect(lines.count == 2)
            #expect(lines.allSatisfy { ($0["archive_key"] as? String)?.hasPrefix("bundles/") == true && $0["storage_class"] as? String == "DEEP_ARCHIVE" })
            #expect(lines.contains { $0["state"] as? String == "duplicate" })
        }
    }

    @Test("a restore in flight: exit 3 and restore-status lists it; a second run asks nothing; --wait finishes the job")
    func pendingRestoreThenWait() async throws {
        try await PipelineHarness.with(.file) { harness in
            let files = try Self.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            #expect(try await harness.archiveOnce(Self.archiveOptions).status == 0)
            let slow = ["BACKUP_TEST_FILE_RESTORE_SECONDS": "30"]  // long enough for three runs on a loaded machine
            let directory = restoreDirectory(harness)

            let first = try await harness.restore(["--source", "DVD 12", "--tier", "Bulk"], to: directory, environment: slow)
            #expect(first.status == 3, "\(first.output)")
            #expect(first.restoreRequests.count == 3)
            #expect(first.files("restored").isEmpty)
            #expect((first.summary["pending"] as? [Any])?.count == 3)

            let status = try await harness.uploader(["restore-status", "--json"], environment: slow)
            #expect(status.status == 0, "\(status.output)")
            let pending = status.events.filter { $0["state"] as? String == "pending" }
            #expect(pending.count == 3, "\(status.output)")
            // Bulk from Deep Archive: expected within 48 hours of the request.
            for request in pending {
                let requested = try #require((request["requested_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
                let expected = try #require((request["expected_ready_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
                #expect(abs(expected.timeIntervalSince(requested) - 48 * 3600) < 5)
                #expect(request["tier"] as? String == "Bulk")
            }

            let again = try await harness.restore(["--source", "DVD 12"], to: directory, environment: slow)
            #expect(again.status == 3, "\(again.output)")
            #expect(again.restoreRequests.isEmpty, "a restore in flight is never requested again")
            #expect(again.events("object").allSatisfy { $0["state"] as? String == "in_progress" })

            let waited = try await harness.restore(["--source", "DVD 12", "--wait", "--poll-seconds", "1"], to: directory, environment: slow)
            #expect(waited.status == 0, "\(waited.output)")
            #expect(waited.restoreRequests.isEmpty)
            #expect(!waited.events("waiting").isEmpty)
            try Self.expectRestored(harness, files, in: directory, label: "DVD 12")
            #expect(try await harness.scalar("SELECT count(*) FROM restore_requests WHERE state = 'ready'", as: Int64.self) == 3)
        }
    }

    @Test("a zstd bundle's download cut mid-way is read on from where it broke (a ranged GET), straight through zstd and tar: every member restored byte for byte, no byte fetched twice, nothing of the bundle left on disk")
    func bundleStreamCutMidWay() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<40 {
                files["letters/letter \(index).txt"] = Array(String(repeating: "letter \(index): dear grandma, the garden is fine\n", count: 400).utf8)
            }
            for (path, bytes) in files { try harness.write(path, bytes) }
            #expect(try await harness.upload(label: "Letters").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE state = 'archived' AND compression = 'zstd'", as: Int64.self) == 1)
            let bundleBytes = try #require(try await harness.scalar("SELECT stored_bytes FROM bundles WHERE state = 'archived'", as: Int64.self))

            let proxy = try await FaultProxy()
            defer { proxy.stop() }
            try await proxy.inject([.init("GetObject", "cut-body", times: 1, pathContains: ".tar")])
            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--source", "Letters"], to: directory, environment: ["AWS_ENDPOINT_URL_S3": proxy.endpoint])
            #expect(run.status == 0, "\(run.output)")
            #expect(try await proxy.injected()["GetObject cut-body"] == 1, "the cut happened")
            #expect(run.summary["bytes_downloaded"] as? Int == Int(bundleBytes), "the half passed on before the cut is not fetched again: \(run.summary)")
            let restored = try PipelineHarness.files(under: directory + "/Letters")
            #expect(restored == files)
            let leftovers = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { $0.contains("bundle") || $0.hasSuffix(".partial") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    @Test("one file inside a plain tar bundle: a ranged GET of exactly its bytes (and its header), nothing else written")
    func singleFileInsideBundle() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<8 { files["data/part \(index).bin"] = PipelineHarness.bytes(count: 40_000, seed: UInt64(100 + index)) }
            for (path, bytes) in files { try harness.write(path, bytes) }
            #expect(try await harness.upload(label: "Drive A").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            #expect(try await harness.scalar("SELECT compression FROM bundles WHERE state = 'archived'", as: String.self) == "none")

            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--path", "data/part 3.bin"], to: directory)
            #expect(run.status == 0, "\(run.output)")
            #expect(run.restoreRequests.count == 1)
            #expect(run.summary["bytes_downloaded"] as? Int == 40_000 + 512, "the member's bytes and its tar header only: \(run.summary)")
            let restored = try PipelineHarness.files(under: directory)
            #expect(Array(restored.keys) == ["Drive A/data/part 3.bin"])
            #expect(restored["Drive A/data/part 3.bin"] == files["data/part 3.bin"])

            // By content: the SHA-256 of another part finds it (in any source).
            let hash = PipelineHarness.sha256(files["data/part 5.bin"]!)
            let byHash = try await harness.restore(["--hash", hash], to: directory)
            #expect(byHash.status == 0, "\(byHash.output)")
            #expect(FileManager.default.contents(atPath: directory + "/Drive A/data/part 5.bin").map(Array.init) == files["data/part 5.bin"])
            #expect(byHash.restoreRequests.isEmpty, "the bundle is already restored")
        }
    }

    @Test("an interrupted download is resumed: the second run fetches only the missing bytes")
    func interruptedDownloadResumes() async throws {
        try await PipelineHarness.with(.file) { harness in
            let big = PipelineHarness.bytes(count: 24 << 20, seed: 42)
            try harness.write("disc/big.bin", big)
            #expect(try await harness.upload(label: "Drive B").status == 0)
            #expect(try await harness.archiveOnce().status == 0)
            let directory = restoreDirectory(harness)
            let killed = try await harness.restore(["--source", "Drive B"], to: directory, environment: ["BACKUP_RESTORE_TEST_KILL_AFTER_BYTES": "9000000"])
            #expect(killed.status != 0)
            let partial = directory + "/Drive B/disc/.big.bin.partial"
            let partialSize = try #require(try FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int)
            #expect(partialSize >= 9_000_000 && partialSize < big.count, "\(partialSize)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/Drive B/disc/big.bin"))

            let resumed = try await harness.restore(["--source", "Drive B"], to: directory)
            #expect(resumed.status == 0, "\(resumed.output)")
            #expect(resumed.summary["bytes_downloaded"] as? Int == big.count - partialSize)
            #expect(resumed.restoreRequests.isEmpty, "restored at the first run, still readable")
            #expect(FileManager.default.contents(atPath: directory + "/Drive B/disc/big.bin").map(Array.init) == big)
            #expect(!FileManager.default.fileExists(atPath: partial))
        }
    }

    @Test("a file in the way is kept unless --overwrite; a symbolic link planted in the destination is never followed")
    func existingFilesAndLinks() async throws {
        try await PipelineHarness.with(.file) { harness in
            let files = try Self.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            #expect(try await harness.archiveOnce(Self.archiveOptions).status == 0)
            let directory = restoreDirectory(harness)
            try FileManager.default.createDirectory(atPath: directory + "/DVD 12/docs", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: directory + "/DVD 12/docs/note 1.txt", contents: Data("mine\n".utf8))
            let outside = harness.work.path + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: directory + "/DVD 12/photos", withDestinationPath: outside)

            let run = try await harness.restore(["--source", "DVD 12"], to: directory)
            #expect(run.status == 1, "\(run.output)")
            let failed = (run.summary["failed"] as? [[String: String]]) ?? []
            #expect(failed.contains { $0["path"] == "DVD 12/docs/note 1.txt" && $0["code"] == "exists" }, "\(failed)")
            #expect(failed.filter { $0["path"]?.hasPrefix("DVD 12/photos/") == true && $0["code"] == "unsafePath" }.count == 2, "\(failed)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "nothing written through the link")
            #expect(FileManager.default.contents(atPath: directory + "/DVD 12/docs/note 1.txt") == Data("mine\n".utf8))
            #expect(FileManager.default.contents(atPath: directory + "/DVD 12/docs/note 2.txt").map(Array.init) == files["docs/note 2.txt"], "note 2 restored")

            try FileManager.default.removeItem(atPath: directory + "/DVD 12/photos")
            let overwritten = try await harness.restore(["--source", "DVD 12", "--overwrite"], to: directory)
            #expect(overwritten.status == 0, "\(overwritten.output)")
            try Self.expectRestored(harness, files, in: directory, label: "DVD 12")
        }
    }

    @Test("a transcoded video comes back as its verified transcode, named <original>.mp4")
    func transcodedVideo() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            let tape = harness.source.path + "/tapes/birthday 1999.avi"
            let ffmpeg = try await Subprocess.run("/usr/bin/env", [
                "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "1", "-vf", "setfield=bff", "-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", "4:3",
                "-c:a", "pcm_s16le", "-ac", "2", tape,
            ])
            #expect(ffmpeg.status == 0, "\(ffmpeg.output)")
            #expect(try await harness.upload(label: "Tapes").status == 0)
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output)")
            #expect(try await harness.archiveOnce().status == 0)
            let video = try #require(try await harness.rows().first)
            #expect(video.state == "archived")
            let storedHash = try #require(try await harness.scalar("SELECT stored_hash FROM objectstoragefiles WHERE id = \(video.id)", as: String.self))
            #expect(storedHash != video.hash)

            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--source", "Tapes"], to: directory)
            #expect(run.status == 0, "\(run.output)")
            let restoredPath = directory + "/Tapes/tapes/birthday 1999.avi.mp4"
            let bytes = try #require(FileManager.default.contents(atPath: restoredPath))
            #expect(PipelineHarness.sha256(Array(bytes)) == storedHash)
            let probe = try await Subprocess.run("/usr/bin/env", [
                "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name", "-of", "default=noprint_wrappers=1", restoredPath,
            ])
            #expect(probe.output.contains("codec_name=h264"), "\(probe.output)")
        }
    }

    @Test("a disc image made with xorriso comes back byte for byte")
    func discImage() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let tree = harness.work.path + "/disc-tree"
            try FileManager.default.createDirectory(atPath: tree + "/DCIM", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: tree + "/DCIM/photo.raw", contents: Data(PipelineHarness.bytes(count: 500_000, seed: 5)))
            FileManager.default.createFile(atPath: tree + "/readme.txt", contents: Data("disc 13\n".utf8))
            let iso = harness.work.path + "/disc13.iso"
            let xorriso = try #require(["/usr/bin/xorriso", "/bin/xorriso"].first { FileManager.default.isExecutableFile(atPath: $0) }, "xorriso is installed by scripts/test")
            let build = try await Subprocess.run(xorriso, ["-as", "mkisofs", "-quiet", "-J", "-R", "-o", iso, tree])
            #expect(build.status == 0, "\(build.output)")
            let imaged = try await harness.uploader(["image", iso, "--label", "DVD 13", "--json"])
            #expect(imaged.status == 0, "\(imaged.output)")
            #expect(try await harness.archiveOnce().status == 0)
            #expect(try await harness.rows().first?.kind == "disc_image")

            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--source", "DVD 13"], to: directory)
            #expect(run.status == 0, "\(run.output)")
            let original = try #require(FileManager.default.contents(atPath: iso))
            #expect(FileManager.default.contents(atPath: directory + "/DVD 13/disc13.iso") == original)
        }
    }

    @Test("a sparse 48 MiB disc image costs the disk what it holds in staging, in the archive and restored, and comes back byte for byte; sealed with age too")
    func sparseDiscImage() async throws {
        try await PipelineHarness.with(.file) { harness in
            // Data at the start, 300 KiB at an unaligned offset in the middle, then zeros to the end (the restore
            // must give the file its full length though nothing was written there).
            let size = 48 << 20
            var expected = [UInt8](repeating: 0, count: size)
            for (offset, count, seed) in [(0, 1 << 20, UInt64(81)), (20_000_123, 300_000, 82)] {
                expected.replaceSubrange(offset..<(offset + count), with: PipelineHarness.bytes(count: count, seed: seed))
            }
            // The image is sparse itself, so its unused sectors are read as holes (``SparseRead``) too.
            let image = harness.work.path + "/mostly-empty.iso"
            FileManager.default.createFile(atPath: image, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
            try handle.truncate(atOffset: UInt64(size))
            for (offset, count) in [(0, 1 << 20), (20_000_123, 300_000)] {
                try handle.seek(toOffset: UInt64(offset))
                try handle.write(contentsOf: Data(expected[offset..<(offset + count)]))
            }
            try handle.close()
            #expect(try Self.allocatedBytes(image) < 8 << 20, "the test's own image is sparse")
            let keyPath = harness.work.path + "/key.txt"
            let recipient = try await EncryptionTests.ageKeygen(keyPath)
            for (label, extra) in [("Empty disc", [String]()), ("Sealed disc", ["--encrypt-to", recipient])] {
                let imaged = try await harness.uploader(["image", image, "--label", label, "--json"] + extra)
                #expect(imaged.status == 0, "\(imaged.output)")
            }
            let staged = try Self.regularFiles(under: harness.work.path + "/staging", size: Int64(size))
            #expect(staged.count == 1, "the plain image in staging: \(staged)")
            for path in staged { #expect(try Self.allocatedBytes(path) < 8 << 20, "\(path) is stored as holes") }
            #expect(try await harness.archiveOnce().status == 0)
            let archived = try Self.regularFiles(under: harness.work.path + "/archive", size: Int64(size))
            #expect(archived.count == 1, "the plain image in the archive: \(archived)")
            for path in archived { #expect(try Self.allocatedBytes(path) < 8 << 20, "\(path) is stored as holes") }

            let directory = restoreDirectory(harness)
            for (label, extra) in [("Empty disc", [String]()), ("Sealed disc", ["--identity", keyPath])] {
                let run = try await harness.restore(["--source", label] + extra, to: directory)
                #expect(run.status == 0, "\(run.output)")
                let restored = directory + "/\(label)/mostly-empty.iso"
                let bytes = FileManager.default.contents(atPath: restored).map(Array.init) ?? []
                let firstDifference = (0..<min(bytes.count, expected.count)).first { bytes[$0] != expected[$0] } ?? min(bytes.count, expected.count)
                #expect(bytes == expected, "\(label): \(bytes.count) bytes, the first difference at \(firstDifference)")
                #expect(try Self.allocatedBytes(restored) < 8 << 20, "\(label): restored with holes")
            }
        }
    }

    /// Regular files of exactly `size` bytes below `root`.
    static func regularFiles(under root: String, size: Int64) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let attributes = try FileManager.default.attributesOfItem(atPath: root + "/" + relative)
            if attributes[.type] as? FileAttributeType == .typeRegular, (attributes[.size] as? NSNumber)?.int64Value == size {
                found.append(root + "/" + relative)
            }
        }
        return found
    }

    /// What a file occupies on the disk (its blocks), as opposed to its length.
    static func allocatedBytes(_ path: String) throws -> Int64 {
        var info = stat()
        try #require(stat(path, &info) == 0, "stat \(path)")
        return Int64(info.st_blocks) * 512
    }
}
