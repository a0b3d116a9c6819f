import Catalog
import Foundation
import ObjectStore
import Testing
import TestSupport
import SystemIO

@Suite("uploader upload against real PostgreSQL and S3/file staging")
struct UploadTests {
    @Test("a nested tree with odd names, empty files and identical files", arguments: [UploaderHarness.Staging.s3, .file])
    func nestedTree(staging: UploaderHarness.Staging) async throws {
        try await UploaderHarness.with(staging) { harness in
            let photo = UploaderHarness.bytes(count: 300_000, seed: 1)
            try harness.write("photos/2008/beach.jpg", photo)
            try harness.write("photos/copy of beach.jpg", photo)
            try harness.write("docs/ünïcödé naïve+plus.txt", "unicode")
            try harness.write("docs/line\nbreak.txt", "newline in the name")
            try harness.write("docs/empty.txt", [])
            let longDirectory = (1...12).map { "directory-with-a-rather-long-name-\($0)" }.joined(separator: "/")
            try harness.write(longDirectory + "/deep.txt", "deep")
            try FileManager.default.createSymbolicLink(atPath: harness.source.path + "/link-to-docs", withDestinationPath: "docs")

            let run = try await harness.upload(extra: ["--meta", "year=2008", "--note", "school videos"])
            #expect(run.status == 0, "\(run.output)")
            #expect(run.summary["files"] as? Int == 6)
            #expect(run.summary["staged"] as? Int == 5)
            #expect(run.summary["duplicates"] as? Int == 1)
            #expect((run.summary["skipped"] as? [String])?.first?.contains("link-to-docs") == true, "the symlink is listed, not dropped")

            let rows = try await harness.rows()
            #expect(rows.count == 6)
            let byPath = Dictionary(uniqueKeysWithValues: rows.map { ($0.path, $0) })
            let beach = try #require(byPath["photos/2008/beach.jpg"])
            let copy = try #require(byPath["photos/copy of beach.jpg"])
            #expect(beach.hash == UploaderHarness.sha256(photo))
            #expect(copy.hash == beach.hash)
            // Exactly one of the two holds the content; which one depends on which finished first.
            let holder = beach.state == "staged" ? beach : copy
            let duplicate = beach.state == "staged" ? copy : beach
            #expect(holder.state == "staged")
            #expect(duplicate.state == "duplicate")
            #expect(duplicate.duplicateOf == holder.id)
            #expect(duplicate.storageKey == nil)
            for row in rows where row.state == "staged" {
                #expect(row.storage == "staging")
                #expect(row.version == 1)
                let key = try #require(row.storageKey)
                #expect(try await harness.stagedHash(key) == row.hash, "staged bytes of \(row.path)")
            }
            #expect(byPath["docs/line\nbreak.txt"]?.name == "line\nbreak.txt")
            #expect(byPath["docs/empty.txt"]?.hash == UploaderHarness.sha256([]))
            #expect(byPath[longDirectory + "/deep.txt"]?.state == "staged")
            #expect(try await harness.scalar("SELECT metadata->>'year' FROM sources WHERE label = 'DVD 12'", as: String.self) == "2008")
            #expect(try await harness.scalar("SELECT count(*) FROM pending_uploads", as: Int64.self) == 0)
        }
    }

    @Test("the same disc twice: nothing read or sent again, nothing duplicated")
    func sameDiscTwice() async throws {
        try await UploaderHarness.with(.s3) { harness in
            for index in 0..<20 { try harness.write("file-\(index).bin", UploaderHarness.bytes(count: 10_000 + index, seed: UInt64(index))) }
            // Files written within the timestamp granularity (2 s) before a run are re-read once by the next run, as
            // git re-checks its "racy" entries: a second write in the same second could have kept size and time.
            try await Task.sleep(for: .milliseconds(2_200))
            let first = try await harness.upload()
            #expect(first.status == 0, "\(first.output)")
            let rowsBefore = try await harness.rows()

            let second = try await harness.upload()
            #expect(second.status == 0, "\(second.output)")
            #expect(second.summary["unchanged"] as? Int == 20)
            #expect(second.summary["bytes_read"] as? Int == 0)
            #expect(second.summary["index_hits"] as? Int == 20, "known unchanged from the local index, no catalog look-up")
            #expect(second.summary["bytes_uploaded"] as? Int == 0)
            let rowsAfter = try await harness.rows()
            #expect(rowsAfter.map(\.id) == rowsBefore.map(\.id))
        }
    }

    @Test("a changed file gets version 2; the same content with a new time adds no version")
    func versions() async throws {
        try await UploaderHarness.with(.file) { harness in
            try harness.write("notes.txt", "first draft")
            try harness.write("stable.txt", "never changes")
            #expect(try await harness.upload().status == 0)

            try harness.write("notes.txt", "second draft, longer")
            // Same bytes, new modification time: hashed again, recognised, no new version.
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 3600)], ofItemAtPath: harness.source.path + "/stable.txt")
            let second = try await harness.upload()
            #expect(second.status == 0, "\(second.output)")

            let rows = try await harness.rows()
            let notes = rows.filter { $0.path == "notes.txt" }
            #expect(notes.map(\.version) == [1, 2])
            #expect(notes.map(\.state) == ["staged", "staged"])
            #expect(notes.last?.hash == UploaderHarness.sha256(Array("second draft, longer".utf8)))
            #expect(rows.filter { $0.path == "stable.txt" }.map(\.version) == [1])
        }
    }

    @Test("identical content across two sources is stored once")
    func duplicatesAcrossSources() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let video = UploaderHarness.bytes(count: 2_000_000, seed: 7)
            try harness.write("tape.bin", video)
            #expect(try await harness.upload(label: "Drive A").status == 0)
            let second = try await harness.upload(label: "Drive B")
            #expect(second.status == 0)
            #expect(second.summary["duplicates"] as? Int == 1)
            #expect(second.summary["bytes_uploaded"] as? Int == 0, "a known hash is never sent")
            #expect(second.summary["bytes_saved_by_dedupe"] as? Int == video.count)
            let states = try await harness.rows().map(\.state).sorted()
            #expect(states == ["duplicate", "staged"])
        }
    }

    @Test("bad arguments exit 2 with one line")
    func usageErrors() async throws {
        try await UploaderHarness.with(.file) { harness in
            #expect(try await Program.run("uploader", ["sources"], environment: harness.environment).status == 0, "the catalog is made")
            let noLabel = try await Program.run("uploader", ["upload", harness.source.path], environment: harness.environment)
            #expect(noLabel.status == 2)
            let badMeta = try await Program.run("uploader", ["upload", harness.source.path, "--label", "x", "--meta", "novalue"], environment: harness.environment)
            #expect(badMeta.status == 2)
            #expect(badMeta.output.contains("--meta expects key=value"))
            let missing = try await Program.run("uploader", ["upload", harness.source.path + "/nope", "--label", "x"], environment: harness.environment)
            #expect(missing.status == 2)
            #expect(missing.output.contains("no such file or directory"))
            #expect(try await harness.scalar("SELECT count(*)::int FROM sources", as: Int.self) == 0, "no source was opened for them")
        }
    }

    @Test("an ISO image is read in place: its members are staged, duplicates and hard links stored once")
    func isoImage() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let tree = harness.work.path + "/iso-tree"
            let video = UploaderHarness.bytes(count: 3_000_000, seed: 21)
            for (path, bytes) in [("VIDEO_TS/VTS_01_1.VOB", video), ("docs/brief ü.txt", Array("brief".utf8)), ("docs/copy.txt", Array("brief".utf8))] {
                let full = tree + "/" + path
                try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: full, contents: Data(bytes))
            }
            try FileManager.default.linkItem(atPath: tree + "/VIDEO_TS/VTS_01_1.VOB", toPath: tree + "/VIDEO_TS/hardlink.VOB")
            let iso = harness.work.path + "/disc.iso"
            let xorriso = try #require(["/usr/bin/xorriso", "/bin/xorriso"].first { FileManager.default.isExecutableFile(atPath: $0) }, "xorriso is installed by scripts/test")
            let build = try await Subprocess.run(xorriso, ["-as", "mkisofs", "-quiet", "-J", "-joliet-long", "-R", "--hardlinks", "-o", iso, tree])
            #expect(build.status == 0, "\(build.output)")

            let result = try await Program.run("uploader", ["upload", iso, "--label", "ISO 1", "--json"], environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            let rows = try await harness.rows()
            #expect(rows.map(\.path) == ["VIDEO_TS/VTS_01_1.VOB", "VIDEO_TS/hardlink.VOB", "docs/brief ü.txt", "docs/copy.txt"])
            let byPath = Dictionary(uniqueKeysWithValues: rows.map { ($0.path, $0) })
            #expect(byPath["VIDEO_TS/VTS_01_1.VOB"]?.hash == UploaderHarness.sha256(video))
            // Whichever name the image lists first holds the bytes; the hard link to it is a duplicate.
            #expect([byPath["VIDEO_TS/hardlink.VOB"]?.state, byPath["VIDEO_TS/VTS_01_1.VOB"]?.state].compactMap { $0 }.sorted() == ["duplicate", "staged"])
            #expect(byPath["VIDEO_TS/hardlink.VOB"]?.hash == UploaderHarness.sha256(video))
            #expect(rows.filter { $0.state == "staged" }.count == 2)
            for row in rows where row.state == "staged" {
                #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash)
            }
            let again = try await Program.run("uploader", ["upload", iso, "--label", "ISO 1", "--json"], environment: harness.environment)
            #expect(UploaderHarness.summary(in: again.output)["unchanged"] as? Int == 4)
        }
    }
}
