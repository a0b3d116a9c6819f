import Foundation
import SystemIO
import Testing
import TestSupport

/// The uploader's local per-source index (`<data dir>/upload-index`): a second run over an unchanged tree does not
/// ask the catalog about files exactly as the last run saw them, and the index never hides a change: a rewrite with
/// the time put back, a replace by rename, another directory, a clock that went back, a damaged index file, or a
/// catalog changed underneath all end in the catalog being asked (and the content compared where size and time lie).
@Suite("uploader upload: the local index", .serialized)
struct LocalIndexTests {
    /// Files written now are "racy" for a run that starts within the timestamp granularity (2 s): wait that out so
    /// that the next run may trust them.
    static func settle() async throws { try await Task.sleep(for: .milliseconds(2_200)) }

    static func status(_ path: String) throws -> stat {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw FileIOError(operation: "lstat", path: path, errno: errno) }
        return info
    }

    /// Sets a file's modification time to exactly `time` (nanoseconds included), as a same-second rewrite on a
    /// file system with coarse times, or `touch -r`, leaves it. Its change time becomes now, as the kernel wants.
    static func setModificationTime(_ path: String, _ time: timespec) throws {
        let times = [time, time]  // access and modification time
        guard utimensat(AT_FDCWD, path, times, 0) == 0 else { throw FileIOError(operation: "utimensat", path: path, errno: errno) }
    }

    /// Rewrites a file in place with other bytes of the same size and puts its modification time back exactly.
    static func rewriteKeepingTime(_ path: String, seed: UInt64) throws {
        let before = try status(path)
        let bytes = UploaderHarness.bytes(count: Int(before.st_size), seed: seed)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try setModificationTime(path, before.st_mtim)
    }

    /// The catalog's view of the source (newest live version of every path, and the newest snapshot's tree) must
    /// be exactly the tree on disk, file by file, content by content.
    /// With `snapshotCounts`, every snapshot's own files and bytes (a copy takes its parent's) must be those of the
    /// tree it holds (not for tests that delete or fail rows behind the uploader's back).
    static func expectCatalogMatchesTree(
        _ harness: UploaderHarness, label: String, snapshotCounts: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var onDisk: [String: String] = [:]
        let root = URL(fileURLWithPath: harness.source.path)
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
        while let url = enumerator?.nextObject() as? URL {
            guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
            onDisk[relative] = UploaderHarness.sha256(Array(try Data(contentsOf: url)))
        }
        let newest = try await harness.scalar("""
            SELECT coalesce(string_agg(path || '=' || coalesce(hash, 'none'), E'\\n' ORDER BY path), '') FROM (
                SELECT DISTINCT ON (f.path) f.path, f.hash, f.deleted_at, f.state FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.label = '\(label)' ORDER BY f.path, f.version DESC) n
            WHERE deleted_at IS NULL AND state NOT IN ('failed', 'unreadable')
            """, as: String.self) ?? ""
        let expected = onDisk.keys.sorted().map { "\($0)=\(onDisk[$0]!)" }.joined(separator: "\n")
        // Paths gone from the tree keep their rows (history; the snapshot says they are gone): compare the tree's paths.
        let newestOfTree = newest.split(separator: "\n").filter { onDisk[String($0.split(separator: "=")[0])] != nil }.joined(separator: "\n")
        #expect(newestOfTree == expected, "newest versions in the catalog: \(difference(newestOfTree, expected))", sourceLocation: sourceLocation)
        let snapshot = try await harness.scalar("""
            SELECT coalesce(string_agg(t.path || '=' || f.hash, E'\\n' ORDER BY t.path), '')
            FROM sources s, snapshot_files(s.id, (SELECT max(number) FROM snapshots n WHERE n.source_id = s.id AND n.finished_at IS NOT NULL)) t
            JOIN objectstoragefiles f ON f.id = t.file_id WHERE s.label = '\(label)'
            """, as: String.self) ?? ""
        #expect(snapshot == expected, "the newest snapshot's tree: \(difference(snapshot, expected))", sourceLocation: sourceLocation)
        guard snapshotCounts else { return }
        let wrongCounts = try await harness.scalar("""
            SELECT coalesce(string_agg(n.number::text, ', '), '') FROM snapshots n JOIN sources s ON s.id = n.source_id,
                LATERAL (SELECT count(*) AS files, coalesce(sum(f.size_bytes), 0) AS bytes
                         FROM snapshot_files(s.id, n.number) t JOIN objectstoragefiles f ON f.id = t.file_id) tree
            WHERE s.label = '\(label)' AND n.finished_at IS NOT NULL AND (n.files <> tree.files OR n.bytes <> tree.bytes)
            """, as: String.self) ?? ""
        #expect(wrongCounts.isEmpty, "snapshots whose files and bytes are not their tree's: \(wrongCounts)", sourceLocation: sourceLocation)
    }

    static func difference(_ catalog: String, _ tree: String) -> String {
        let (a, b) = (Set(catalog.split(separator: "\n")), Set(tree.split(separator: "\n")))
        return "catalog only \(a.subtracting(b).sorted()), tree only \(b.subtracting(a).sorted())"
    }

    static func indexFiles(_ harness: UploaderHarness) -> [String] {
        let directory = harness.work.path + "/upload-index"
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".index") }.map { directory + "/" + $0 }
    }

    @Test("a second run over an unchanged tree knows every file from the index, also after the archiver ran; --no-index asks the catalog")
    func secondRunUsesTheIndex() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<30 { try harness.write("docs/d\(index % 4)/file-\(index).txt", UploaderHarness.bytes(count: 100 + index * 37, seed: UInt64(index))) }
            try await Self.settle()
            let first = try await harness.upload(label: "Index")
            #expect(first.status == 0 && first.summary["staged"] as? Int == 30, "\(first.output)")
            #expect(first.summary["index_hits"] as? Int == 0)
            #expect(Self.indexFiles(harness).count == 1, "one index for the source, written after the run")

            let written = try Self.status(try #require(Self.indexFiles(harness).first))
            let second = try await harness.upload(label: "Index")
            #expect(second.status == 0 && second.summary["unchanged"] as? Int == 30, "\(second.output)")
            #expect(second.summary["index_hits"] as? Int == 30, "\(second.summary)")
            #expect((second.summary["index"] as? String) == "local index used")
            // Nothing to add: the index on disk is kept as it is, not written again (a rewrite is a new inode).
            let kept = try Self.status(try #require(Self.indexFiles(harness).first))
            #expect(kept.st_ino == written.st_ino && kept.st_mtim.tv_nsec == written.st_mtim.tv_nsec, "the unchanged run left the index alone")

            // Archiving moves every row staged → archiving → archived: none of that changes what a look-up answers.
            #expect(try await harness.archiveOnce().status == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM objectstoragefiles WHERE state = 'archived'", as: Int.self) == 30)
            let afterArchiving = try await harness.upload(label: "Index")
            #expect(afterArchiving.summary["index_hits"] as? Int == 30, "\(afterArchiving.summary)")

            try harness.write("docs/d0/file-0.txt", UploaderHarness.bytes(count: 999, seed: 999))
            try await Self.settle()  // so that the runs below may trust it
            let changed = try await harness.upload(label: "Index")
            #expect(changed.summary["staged"] as? Int == 1 && changed.summary["index_hits"] as? Int == 29, "\(changed.summary)")
            #expect(try Self.status(try #require(Self.indexFiles(harness).first)).st_ino != written.st_ino, "a run that changed something writes it")

            let noIndex = try await harness.upload(label: "Index", extra: ["--no-index"])
            #expect(noIndex.status == 0 && noIndex.summary["unchanged"] as? Int == 30 && noIndex.summary["index_hits"] as? Int == 0, "\(noIndex.summary)")
            #expect(try await harness.upload(label: "Index").summary["index_hits"] as? Int == 30, "--no-index still leaves a fresh index")
            try await Self.expectCatalogMatchesTree(harness, label: "Index")
            #expect(try await harness.scalar("SELECT count(*)::int FROM snapshots WHERE finished_at IS NOT NULL", as: Int.self) == 6)
        }
    }

    @Test("same size, modification time put back: a rewrite in place, a replace by rename, a rewrite in the same second as the last run are all stored")
    func changesBehindTheSameSizeAndTime() async throws {
        try await UploaderHarness.with(.file) { harness in
            for (seed, name) in ["inplace", "renamed", "touched", "chmod", "untouched"].enumerated() {
                try harness.write("\(name).bin", UploaderHarness.bytes(count: 4096, seed: UInt64(seed + 1)))
            }
            try await Self.settle()
            #expect(try await harness.upload(label: "Tricks").status == 0)
            let root = harness.source.path

            // Rewritten in place with the time put back (a coarse clock, or `touch -r`): inode same, ctime not.
            try Self.rewriteKeepingTime(root + "/inplace.bin", seed: 1001)
            // Replaced by rename with a new file of the same size and time (new inode).
            let old = try Self.status(root + "/renamed.bin")
            try Data(UploaderHarness.bytes(count: 4096, seed: 1002)).write(to: URL(fileURLWithPath: root + "/renamed.tmp"))
            try Self.setModificationTime(root + "/renamed.tmp", old.st_mtim)
            #expect(rename(root + "/renamed.tmp", root + "/renamed.bin") == 0)
            // Only its time touched and put back: the content is the same, so it is re-read and found unchanged.
            let touched = try Self.status(root + "/touched.bin")
            try Self.setModificationTime(root + "/touched.bin", timespec(tv_sec: touched.st_mtim.tv_sec - 3600, tv_nsec: 0))
            try Self.setModificationTime(root + "/touched.bin", touched.st_mtim)
            #expect(chmod(root + "/chmod.bin", 0o600) == 0)

            let run = try await harness.upload(label: "Tricks")
            #expect(run.status == 0, "\(run.output)")
            #expect(run.summary["staged"] as? Int == 2, "inplace and renamed are new content: \(run.summary)")
            #expect(run.summary["index_rechecked"] as? Int == 4, "four files touched since the index saw them are re-read")
            #expect(run.summary["index_hits"] as? Int == 1, "untouched.bin alone is as it was")
            try await Self.expectCatalogMatchesTree(harness, label: "Tricks")

            // A run that starts right after a write: that write's time is too close to the run's start to trust.
            try harness.write("fresh.bin", UploaderHarness.bytes(count: 2048, seed: 5))
            #expect(try await harness.upload(label: "Tricks").summary["staged"] as? Int == 1)
            // Rewritten within the same second as that run, same size, time put back to the nanosecond.
            try Self.rewriteKeepingTime(root + "/fresh.bin", seed: 6)
            let racy = try await harness.upload(label: "Tricks")
            #expect(racy.summary["staged"] as? Int == 1, "the same-second rewrite is stored: \(racy.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Tricks")
            #expect(try await harness.scalar("SELECT max(version) FROM objectstoragefiles WHERE path = 'fresh.bin'", as: Int.self) == 2)
        }
    }

    @Test("another directory, a clock gone back, a damaged index: the index is ignored and the run is right")
    func indexIgnored() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<12 { try harness.write("f\(index).dat", UploaderHarness.bytes(count: 1000 + index, seed: UInt64(index))) }
            try await Self.settle()
            #expect(try await harness.upload(label: "Ignored").status == 0)

            // The same tree copied elsewhere (times kept, as `cp -a` does), uploaded under the same label.
            let copy = try TemporaryDirectory("copy")
            defer { copy.remove() }
            #expect(try await Subprocess.run("/bin/cp", ["-a", harness.source.path + "/.", copy.path]).status == 0)
            let elsewhere = try await harness.upload(label: "Ignored", path: copy.path)
            #expect(elsewhere.status == 0 && elsewhere.summary["unchanged"] as? Int == 12 && elsewhere.summary["index_hits"] as? Int == 0, "\(elsewhere.summary)")
            #expect((elsewhere.summary["index"] as? String)?.contains("another directory") == true, "\(elsewhere.summary)")
            _ = try await harness.upload(label: "Ignored")  // back home: a fresh index for the original directory

            // The clock went back: the index says it was written an hour from now.
            let file = try #require(Self.indexFiles(harness).first)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
            let written = try #require(Self.writtenOffset(bytes))
            let future = Int64(Date().timeIntervalSince1970 + 3600) * 1_000_000_000
            withUnsafeBytes(of: future.littleEndian) { bytes.replaceSubrange(written..<(written + 8), with: $0) }
            Self.reseal(&bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            try harness.write("f3.dat", UploaderHarness.bytes(count: 2003, seed: 300))
            let future1 = try await harness.upload(label: "Ignored")
            #expect(future1.summary["index_hits"] as? Int == 0 && (future1.summary["index"] as? String)?.contains("clock went back") == true, "\(future1.summary)")
            #expect(future1.summary["staged"] as? Int == 1 && future1.summary["unchanged"] as? Int == 11, "\(future1.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Ignored")

            // Damaged: one byte flipped, then cut short, then not an index at all.
            let damages: [@Sendable (inout [UInt8]) -> Void] = [{ $0[$0.count / 2] ^= 0x40 }, { $0.removeLast(17) }, { $0 = Array("garbage".utf8) }]
            for damage in damages {
                _ = try await harness.upload(label: "Ignored")
                let file = try #require(Self.indexFiles(harness).first)
                var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
                damage(&bytes)
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                try harness.write("added-\(bytes.count).txt", "new \(bytes.count)")
                let run = try await harness.upload(label: "Ignored")
                #expect(run.status == 0 && run.summary["index_hits"] as? Int == 0 && run.summary["staged"] as? Int == 1, "\(run.summary)")
                #expect((run.summary["index"] as? String)?.contains("no usable local index") == true)
                try await Self.expectCatalogMatchesTree(harness, label: "Ignored")
            }
        }
    }

    @Test("the catalog changed underneath (a delete request, a failed row, another machine's version, a rebuilt catalog): not trusted")
    func catalogChangedUnderneath() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<10 { try harness.write("p\(index).txt", UploaderHarness.bytes(count: 500 + index, seed: UInt64(index))) }
            try await Self.settle()
            #expect(try await harness.upload(label: "Under").status == 0)
            #expect(try await harness.upload(label: "Under").summary["index_hits"] as? Int == 10)

            // `uploader delete`-style request for one file: that file is history now and is stored again.
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id) SELECT id FROM objectstoragefiles WHERE path = 'p1.txt'")
            let deleted = try await harness.upload(label: "Under")
            // Stored again: as a duplicate of the row whose deletion waits out its grace period (its content is still there).
            #expect(deleted.summary["index_hits"] as? Int == 0, "\(deleted.summary)")
            #expect((deleted.summary["staged"] as? Int ?? 0) + (deleted.summary["duplicates"] as? Int ?? 0) == 1, "\(deleted.summary)")
            #expect((deleted.summary["index"] as? String)?.contains("catalog changed") == true)
            #expect(try await harness.upload(label: "Under").summary["index_hits"] as? Int == 10, "trusted again once a run saw the catalog as it is")

            // The archive gave up on a file: it must be sent again.
            try await harness.execute("UPDATE objectstoragefiles SET state = 'failed', error = 'test' WHERE path = 'p2.txt' AND state = 'staged'")
            let failed = try await harness.upload(label: "Under")
            #expect(failed.summary["index_hits"] as? Int == 0, "\(failed.summary)")
            #expect(try await harness.scalar("SELECT state FROM objectstoragefiles WHERE path = 'p2.txt' ORDER BY version DESC LIMIT 1", as: String.self) == "staged")

            // Another machine (its own data directory, so its own index) uploads other content at a path of this source.
            let other = try TemporaryDirectory("other")
            defer { other.remove() }
            try Data(UploaderHarness.bytes(count: 77, seed: 4242)).write(to: URL(fileURLWithPath: other.path + "/p3.txt"))
            let otherWork = try TemporaryDirectory("otherwork")
            defer { otherWork.remove() }
            let theirs = try await harness.upload(label: "Under", path: other.path, environment: ["BACKUP_DATA_DIR": otherWork.path])
            #expect(theirs.status == 0 && theirs.summary["staged"] as? Int == 1, "\(theirs.output)")
            let mine = try await harness.upload(label: "Under")
            #expect(mine.summary["index_hits"] as? Int == 0, "\(mine.summary)")
            #expect((mine.summary["staged"] as? Int ?? 0) + (mine.summary["duplicates"] as? Int ?? 0) == 1, "this machine's p3.txt is the newest again: \(mine.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Under")

            // Rows deleted outright, or a catalog with another identity (rebuilt, another database).
            #expect(try await harness.upload(label: "Under").summary["index_hits"] as? Int == 10)
            try await harness.execute("DELETE FROM snapshot_changes WHERE file_id IN (SELECT id FROM objectstoragefiles WHERE path = 'p4.txt')")
            try await harness.execute("DELETE FROM objectstoragefiles WHERE path = 'p4.txt'")
            let removed = try await harness.upload(label: "Under")
            #expect(removed.summary["index_hits"] as? Int == 0 && removed.summary["staged"] as? Int == 1, "\(removed.summary)")
            try await harness.execute("UPDATE catalog_identity SET id = gen_random_uuid()")
            let rebuilt = try await harness.upload(label: "Under")
            #expect(rebuilt.summary["index_hits"] as? Int == 0 && (rebuilt.summary["index"] as? String)?.contains("no usable local index") == true, "\(rebuilt.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Under")
        }
    }

    @Test("without the index (--no-index, or its file lost), a rewrite with the time put back is found by its change time, and no index vouches for it")
    func rewriteFoundWithoutTheIndex() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<6 { try harness.write("w/f\(index).bin", UploaderHarness.bytes(count: 500 + index, seed: UInt64(index) + 70)) }
            try await Self.settle()
            #expect(try await harness.upload(label: "Rewrite").status == 0)
            try await Self.settle()  // the rewrite's change time lies 2 s after the modification time it puts back
            try Self.rewriteKeepingTime(harness.source.path + "/w/f2.bin", seed: 7_777)
            let noIndex = try await harness.upload(label: "Rewrite", extra: ["--no-index"])
            #expect(noIndex.status == 0 && noIndex.summary["staged"] as? Int == 1 && noIndex.summary["index_rechecked"] as? Int == 1,
                    "size and time say unchanged, the change time does not: \(noIndex.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Rewrite")

            try Self.rewriteKeepingTime(harness.source.path + "/w/f4.bin", seed: 8_888)
            for file in Self.indexFiles(harness) { try FileManager.default.removeItem(atPath: file) }
            let lost = try await harness.upload(label: "Rewrite")
            #expect(lost.status == 0 && lost.summary["staged"] as? Int == 1, "the index file lost: \(lost.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Rewrite")
            let after = try await harness.upload(label: "Rewrite")
            #expect(after.summary["staged"] as? Int == 0 && (after.summary["index_hits"] as? Int ?? 0) >= 4, "\(after.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Rewrite")
        }
    }

    @Test("an unchanged run's snapshot is a copy of the index's, only while the catalog proves it: not after another machine's run or a forget")
    func snapshotCopies() async throws {
        try await UploaderHarness.with(.file) { harness in
            for index in 0..<12 { try harness.write("s/\(index % 3)/f\(index).txt", UploaderHarness.bytes(count: 200 + index, seed: UInt64(index) + 40)) }
            try await Self.settle()
            let first = try await harness.upload(label: "Copies")
            #expect(first.status == 0 && first.summary["snapshot_copy_of"] as? Int == 0, "\(first.output)")
            let second = try await harness.upload(label: "Copies")
            #expect(second.summary["snapshot_copy_of"] as? Int == 1, "\(second.summary)")
            let third = try await harness.upload(label: "Copies")
            #expect(third.summary["snapshot_copy_of"] as? Int == 1, "snapshot 2 changed nothing, so 3 is a copy of 1 too: \(third.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Copies", snapshotCounts: true)

            // Another machine uploads the source from a copy of the tree without one file (times kept): snapshot 4
            // calls it gone, and no row changed, so this machine's index is still trusted file by file.
            let elsewhere = harness.work.path + "/elsewhere"
            let copy = try await Program.run("/bin/cp", ["-a", harness.source.path, elsewhere])
            #expect(copy.status == 0, "\(copy.output)")
            try FileManager.default.removeItem(atPath: elsewhere + "/s/0/f0.txt")
            let other = try await harness.upload(label: "Copies", path: elsewhere, environment: ["BACKUP_DATA_DIR": harness.work.path + "/other-machine"])
            #expect(other.status == 0 && other.summary["staged"] as? Int == 0, "\(other.output)")
            #expect(try await harness.scalar("SELECT files_gone::int FROM snapshots WHERE number = 4", as: Int.self) == 1)
            let back = try await harness.upload(label: "Copies")
            #expect(back.summary["index_hits"] as? Int == 12 && back.summary["snapshot_copy_of"] as? Int == 0, "a copy of 1 is refused: \(back.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Copies", snapshotCounts: true)  // f0 is in snapshot 5 again
            let fifth = try await harness.upload(label: "Copies")
            #expect(fifth.summary["snapshot_copy_of"] as? Int == 5, "the refused run wrote the index again, with its snapshot: \(fifth.summary)")

            // The index's snapshot forgotten: refused once (the index is written again), then copies of the new one.
            let forget = try await Program.run("uploader", ["forget", "--source", "Copies", "--keep-last", "1"], environment: harness.environment)
            #expect(forget.status == 0, "\(forget.output)")
            let afterForget = try await harness.upload(label: "Copies")
            #expect(afterForget.summary["snapshot_copy_of"] as? Int == 0, "snapshot 5 is gone: \(afterForget.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Copies", snapshotCounts: true)
            #expect(try await harness.upload(label: "Copies").summary["snapshot_copy_of"] as? Int == 7)
            try await Self.expectCatalogMatchesTree(harness, label: "Copies", snapshotCounts: true)
        }
    }

    @Test("random edits, renames, deletes, touches and time put back between runs: after every run the catalog is the tree")
    func randomizedHistories() async throws {
        try await UploaderHarness.with(.file) { harness in
            // A new history on every run (the seed is printed; LOCAL_INDEX_TEST_SEED replays one).
            let seed = ProcessInfo.processInfo.environment["LOCAL_INDEX_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
            print("randomizedHistories seed \(seed) (LOCAL_INDEX_TEST_SEED replays it)")
            var random = SplitMix(seed: seed)
            let root = harness.source.path
            var names: [String] = []
            for index in 0..<40 {
                let name = "r/\(index % 5)/n\(index).bin"
                try harness.write(name, UploaderHarness.bytes(count: 64 + Int(random.next() % 3000), seed: random.next()))
                names.append(name)
            }
            try await Self.settle()
            var (hits, copies) = (0, 0)
            for round in 0..<14 {
                // Now and then a run without the index, which compares every path and writes the index afresh.
                let run = try await harness.upload(label: "Random", extra: random.next() % 5 == 0 ? ["--no-index"] : [])
                #expect(run.status == 0, "round \(round): \(run.output)")
                hits += run.summary["index_hits"] as? Int ?? 0
                copies += (run.summary["snapshot_copy_of"] as? Int ?? 0) > 0 ? 1 : 0
                try await Self.expectCatalogMatchesTree(harness, label: "Random", snapshotCounts: true)
                // After a settled run, some rounds change nothing: the next run may close its snapshot as a copy.
                if round % 3 == 0 && random.next() % 3 != 0 { continue }
                for _ in 0..<(3 + Int(random.next() % 6)) {
                    let name = names[Int(random.next() % UInt64(names.count))]
                    let path = root + "/" + name
                    let exists = FileManager.default.fileExists(atPath: path)
                    switch random.next() % 7 {
                    case 0 where exists: try FileManager.default.removeItem(atPath: path)
                    case 1 where exists:
                        let target = "r/\(random.next() % 5)/moved-\(random.next() % 1000).bin"
                        try? FileManager.default.moveItem(atPath: path, toPath: root + "/" + target)
                        names.append(target)
                    case 2 where exists: try Self.rewriteKeepingTime(path, seed: random.next())
                    case 3 where exists:
                        let time = try Self.status(path).st_mtim
                        try Self.setModificationTime(path, timespec(tv_sec: time.tv_sec - Int(random.next() % 100_000), tv_nsec: time.tv_nsec))
                    case 4 where exists: _ = chmod(path, random.next() % 2 == 0 ? 0o600 : 0o644)
                    default: try harness.write(name, UploaderHarness.bytes(count: 64 + Int(random.next() % 3000), seed: random.next()))
                    }
                }
                if round % 3 == 2 { try await Self.settle() }
            }
            try await Self.settle()
            #expect(try await harness.upload(label: "Random").status == 0)
            try await Self.expectCatalogMatchesTree(harness, label: "Random", snapshotCounts: true)
            // Settled and unchanged since that run: the next one trusts every file and closes its snapshot as a copy,
            // whatever the random history left (so the copies are exercised under every seed).
            let quiet = try await harness.upload(label: "Random")
            #expect(quiet.status == 0 && quiet.summary["staged"] as? Int == 0, "\(quiet.output)")
            hits += quiet.summary["index_hits"] as? Int ?? 0
            copies += (quiet.summary["snapshot_copy_of"] as? Int ?? 0) > 0 ? 1 : 0
            #expect((quiet.summary["snapshot_copy_of"] as? Int ?? 0) > 0, "an unchanged settled run is a copy: \(quiet.summary)")
            try await Self.expectCatalogMatchesTree(harness, label: "Random", snapshotCounts: true)
            #expect(hits > 0 && copies > 0, "the index was used along the way (\(hits) hits), and some snapshots were copies (\(copies))")
            let fresh = try await harness.upload(label: "Random", extra: ["--no-index"])
            #expect(fresh.summary["staged"] as? Int == 0 && fresh.summary["duplicates"] as? Int == 0, "a run without the index finds nothing the indexed runs missed: \(fresh.summary)")
        }
    }

    /// Where the header's `written` field is: after magic, version, source id, identity, token, root, file system, run start.
    static func writtenOffset(_ bytes: [UInt8]) -> Int? {
        func length(at offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24 }
        var offset = 8 + 4 + 8
        offset += 4 + length(at: offset)  // catalog identity
        offset += 24  // epoch, rows, max row id
        offset += 4 + length(at: offset)  // root
        offset += 8  // file system id
        offset += 4 + length(at: offset)  // file system type
        offset += 8  // run start
        return offset + 8 <= bytes.count ? offset : nil
    }

    /// Puts a valid checksum on edited index bytes (as a clock gone back would leave them, not as damage).
    static func reseal(_ bytes: inout [UInt8]) {
        bytes.removeLast(32)
        let hex = UploaderHarness.sha256(bytes)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
    }
}
