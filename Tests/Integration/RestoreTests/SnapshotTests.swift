import Foundation
import SystemIO
import Testing
import TestSupport

/// Each finished run over a source is a snapshot; `snapshots`, `diff` and `restore --snapshot/--as-of` read them.
@Suite("snapshots: every run over a source, listed, compared and restored as it was")
struct SnapshotTests {
    static func snapshots(_ harness: PipelineHarness, _ label: String) async throws -> [[String: Any]] {
        let listed = try await harness.uploader(["snapshots", "--source", label, "--json"])
        #expect(listed.status == 0, "\(listed.output)")
        return listed.events
    }

    @Test("changed, gone, back and unchanged runs: the counts, the diff, and each snapshot restored byte for byte, files gone since included")
    func runsOverOneSource() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("letters/a.txt", "first draft")
            try harness.write("letters/b.txt", "to be deleted")
            try harness.write("photos/c.jpg", PipelineHarness.bytes(count: 50_000, seed: 1))
            #expect(try await harness.upload(label: "Laptop").status == 0)

            // Second run: a changed, b gone, d new.
            try harness.write("letters/a.txt", "second draft, longer")
            let gone = harness.source.path + "/letters/b.txt"
            let goneBytes = try Data(contentsOf: URL(fileURLWithPath: gone))
            let goneTime = try FileManager.default.attributesOfItem(atPath: gone)[.modificationDate] as? Date
            try FileManager.default.removeItem(atPath: gone)
            try harness.write("notes/d.txt", "new")
            #expect(try await harness.upload(label: "Laptop").status == 0)
            // Third run: nothing changed. Fourth: b is back as it was (same bytes and time: no new version).
            #expect(try await harness.upload(label: "Laptop").status == 0)
            try goneBytes.write(to: URL(fileURLWithPath: gone))
            try FileManager.default.setAttributes([.modificationDate: try #require(goneTime)], ofItemAtPath: gone)
            #expect(try await harness.upload(label: "Laptop").status == 0)

            let listed = try await Self.snapshots(harness, "Laptop")
            #expect(listed.map { $0["snapshot"] as? Int } == [1, 2, 3, 4])
            #expect(listed.map { $0["files"] as? Int } == [3, 3, 3, 4])
            #expect(listed.map { $0["files_changed"] as? Int } == [3, 2, 0, 1])
            #expect(listed.map { $0["files_gone"] as? Int } == [0, 1, 0, 0])
            #expect(listed.allSatisfy { $0["complete"] as? Bool == true })
            #expect((listed[2]["bytes_uploaded"] as? Int) == 0)

            let diff = try await harness.uploader(["diff", "--source", "Laptop", "1", "2", "--json"])
            #expect(diff.status == 0, "\(diff.output)")
            let changes = diff.events.map { "\($0["change"] as? String ?? "?") \($0["path"] as? String ?? "?")" }
            #expect(changes == ["M letters/a.txt", "- letters/b.txt", "+ notes/d.txt"])
            let same = try await harness.uploader(["diff", "--source", "Laptop", "2", "3", "--json"])
            #expect(same.status == 0 && same.events.isEmpty, "\(same.output)")
            // Gone from the source is not gone from the archive: the row stays.
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE path = 'letters/b.txt' AND deleted_at IS NULL", as: Int64.self) == 1)

            #expect(try await harness.archiveOnce().status == 0)
            let first = restoreDirectory(harness, "first")
            let restoreFirst = try await harness.restore(["--source", "Laptop", "--snapshot", "1"], to: first)
            #expect(restoreFirst.status == 0, "\(restoreFirst.output)")
            #expect(try String(contentsOfFile: first + "/Laptop/letters/a.txt", encoding: .utf8) == "first draft")
            #expect(try String(contentsOfFile: first + "/Laptop/letters/b.txt", encoding: .utf8) == "to be deleted")
            #expect(!FileManager.default.fileExists(atPath: first + "/Laptop/notes/d.txt"))

            let second = restoreDirectory(harness, "second")
            let restoreSecond = try await harness.restore(["--source", "Laptop", "--snapshot", "2"], to: second)
            #expect(restoreSecond.status == 0, "\(restoreSecond.output)")
            #expect(try PipelineHarness.files(under: second + "/Laptop").keys.sorted() == ["letters/a.txt", "notes/d.txt", "photos/c.jpg"])
            #expect(try String(contentsOfFile: second + "/Laptop/letters/a.txt", encoding: .utf8) == "second draft, longer")

            // --as-of now is the newest snapshot; before the first there is none (one clear line, exit 2).
            let now = restoreDirectory(harness, "now")
            let asOfNow = try await harness.restore(["--source", "Laptop", "--as-of", ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: 60))], to: now)
            #expect(asOfNow.status == 0, "\(asOfNow.output)")
            #expect(try PipelineHarness.files(under: now + "/Laptop").count == 4)
            let before = try await harness.restore(["--source", "Laptop", "--as-of", "2001-01-01"], to: restoreDirectory(harness, "before"))
            #expect(before.status == 2 && before.output.contains("source 'Laptop' has no snapshot finished by"), "\(before.output)")
            let missing = try await harness.uploader(["diff", "--source", "Laptop", "1", "9"])
            #expect(missing.status == 2 && missing.output.contains("has no snapshot 9"), "\(missing.output)")
        }
    }

    @Test("a run that could not read a directory calls nothing in it gone: the snapshot keeps it as it was", .enabled(if: FaultyFileSystem.isAvailable, "needs /dev/fuse"))
    func incompleteRunKeepsWhatItCouldNotSee() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("good.txt", "fine")
            try harness.write("closed/inner.txt", "behind a directory that will not open")
            #expect(try await harness.upload(label: "Drive").status == 0)
            try await FaultyFileSystem.with(mirroring: harness.source.path, faults: FaultyFileSystem.Faults(opendir: ["/closed"])) { disc in
                let run = try await harness.upload(label: "Drive", path: disc.mountPoint)
                #expect(run.status == 1, "\(run.output)")
            }
            let listed = try await Self.snapshots(harness, "Drive")
            #expect(listed.count == 2)
            #expect(listed.last?["complete"] as? Bool == false)
            #expect(listed.last?["files_gone"] as? Int == 0)
            #expect(listed.last?["files"] as? Int == 2)
            let diff = try await harness.uploader(["diff", "--source", "Drive", "1", "2", "--json"])
            #expect(diff.status == 0 && diff.events.isEmpty, "\(diff.output)")
        }
    }

    /// The tree of each snapshot as the catalog holds it: "path vN" lines.
    static func tree(_ harness: PipelineHarness, _ label: String, _ number: Int) async throws -> String {
        try await harness.scalar("""
            SELECT coalesce(string_agg(sf.path || ' v' || f.version, ', ' ORDER BY sf.path), '')
            FROM snapshot_files((SELECT id FROM sources WHERE label = '\(label)'), \(number)) sf JOIN objectstoragefiles f ON f.id = sf.file_id
            """, as: String.self) ?? ""
    }

    @Test("forget --keep-last: a dry run changes nothing; then the kept snapshots restore as before, the versions only forgotten ones held are released and deleted, content a kept file shares survives")
    func forgetByPolicy() async throws {
        try await PipelineHarness.with(.file) { harness in
            let shared = PipelineHarness.bytes(count: 40_000, seed: 9)
            try harness.write("a.txt", "a one")
            try harness.write("b.bin", shared)
            try harness.write("c.txt", "never changes")
            #expect(try await harness.upload(label: "Drive").status == 0)                       // 1: a1 b1 c1
            try harness.write("a.txt", "a two, longer")
            try FileManager.default.removeItem(atPath: harness.source.path + "/b.bin")
            try harness.write("e.bin", shared)                                                       // b's content under another name
            #expect(try await harness.upload(label: "Drive").status == 0)                       // 2: a2 c1 e1 (e a duplicate of b)
            try harness.write("a.txt", "a three, longer still")
            #expect(try await harness.upload(label: "Drive").status == 0)                       // 3: a3 c1 e1
            #expect(try await harness.upload(label: "Drive").status == 0)                       // 4: the same
            try harness.write("d.txt", "new at the end")
            #expect(try await harness.upload(label: "Drive").status == 0)                       // 5: a3 c1 d1 e1
            #expect(try await harness.archiveOnce().status == 0)
            var before: [Int: String] = [:]
            for number in 1...5 { before[number] = try await Self.tree(harness, "Drive", number) }

            let dry = try await harness.uploader(["forget", "--source", "Drive", "--keep-last", "2", "--dry-run", "--json"])
            #expect(dry.status == 0, "\(dry.output)")
            let wouldRelease = dry.events("release").map { "\($0["path"] as? String ?? "?") v\($0["version"] as? Int ?? 0)" }
            #expect(wouldRelease == ["a.txt v1", "a.txt v2", "b.bin v1"])
            #expect(dry.summary["forgotten"] as? [Int] == [1, 2, 3])
            #expect(try await Self.snapshots(harness, "Drive").count == 5, "a dry run forgets nothing")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragedeletelog", as: Int64.self) == 0)

            let forget = try await harness.uploader(["forget", "--source", "Drive", "--keep-last", "2", "--json"])
            #expect(forget.status == 0, "\(forget.output)")
            #expect(try await Self.snapshots(harness, "Drive").map { $0["snapshot"] as? Int } == [4, 5])
            let (four, five) = (try await Self.tree(harness, "Drive", 4), try await Self.tree(harness, "Drive", 5))
            #expect(four == before[4] && five == before[5], "kept snapshots hold exactly what they held")
            #expect(try await harness.scalar(
                "SELECT string_agg(f.path || ' v' || f.version, ', ' ORDER BY f.path, f.version) FROM objectstoragedeletelog d JOIN objectstoragefiles f ON f.id = d.file_id",
                as: String.self) == "a.txt v1, a.txt v2, b.bin v1")

            // The archiver carries the deletes out (no grace here): b.bin's content lives on in e.bin.
            #expect(try await harness.archiveOnce(["--delete-grace-days", "0"]).status == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE deleted_at IS NOT NULL", as: Int64.self) == 3)
            let directory = restoreDirectory(harness)
            let restore = try await harness.restore(["--source", "Drive", "--snapshot", "5"], to: directory)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(try PipelineHarness.files(under: directory + "/Drive") == [
                "a.txt": Array("a three, longer still".utf8), "c.txt": Array("never changes".utf8), "d.txt": Array("new at the end".utf8), "e.bin": shared,
            ])
            let gone = try await harness.restore(["--source", "Drive", "--snapshot", "2"], to: restoreDirectory(harness, "gone"))
            #expect(gone.status == 2 && gone.output.contains("has no snapshot 2"), "\(gone.output)")
        }
    }

    @Test("forget needs a rule and a known source; a bad span is one line")
    func forgetRefusals() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("a.txt", "a")
            #expect(try await harness.upload(label: "Drive").status == 0)
            let none = try await harness.uploader(["forget", "--source", "Drive"])
            #expect(none.status == 2 && none.output.contains("say what to keep"), "\(none.output)")
            let unknown = try await harness.uploader(["forget", "--source", "Nope", "--keep-last", "1"])
            #expect(unknown.status == 2 && unknown.output.contains("no source is labelled 'Nope'"), "\(unknown.output)")
            let span = try await harness.uploader(["forget", "--source", "Drive", "--keep-within", "3x"])
            #expect(span.status == 2 && span.output.contains("\"3x\" is not a span"), "\(span.output)")
        }
    }
}
