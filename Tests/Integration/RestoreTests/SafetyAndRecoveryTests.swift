import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import Restore
import Testing
import TestSupport
import SystemIO

/// Hostile bundles, corrupted objects, bit rot on the original medium, and rebuilding the catalog from the
/// archive alone.
@Suite("restore: safety, verification and disaster recovery")
struct SafetyAndRecoveryTests {
    @Test("a bundle with '..' and symlink members: those are refused by name, the rest restored, nothing written outside")
    func pathTraversalRefused() async throws {
        try await PipelineHarness.with(.file) { harness in
            // An independent writer (Python's tarfile) makes the hostile bundle.
            let tarPath = harness.work.path + "/evil.tar"
            let made = try await Subprocess.run("/usr/bin/env", ["python3", "-c", """
                import hashlib, io, json, sys, tarfile
                out = []
                with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as tar:
                    for name, data in [("Evil/good.txt", b"a good file\\n"), ("Evil/../../escape.txt", b"I got out\\n")]:
                        info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 1200000000
                        tar.addfile(info, io.BytesIO(data))
                    link = tarfile.TarInfo("Evil/link"); link.type = tarfile.SYMTYPE; link.linkname = "/etc/passwd"
                    tar.addfile(link)
                with tarfile.open(sys.argv[1]) as tar:
                    for m in tar.getmembers():
                        data = tar.extractfile(m).read() if m.isfile() else b""
                        out.append({"name": m.name, "offset": m.offset_data, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
                print(json.dumps(out))
                """, tarPath])
            #expect(made.status == 0, "\(made.output)")
            let members = try #require(try JSONSerialization.jsonObject(with: Data(made.output.utf8)) as? [[String: Any]])
            let bundleBytes = try #require(FileManager.default.contents(atPath: tarPath))
            #expect(try await harness.uploader(["migrate"]).status == 0)
            _ = try await harness.archive.put("bundles/evil.tar", bytes: Array(bundleBytes), options: PutOptions(storageClass: .standard))
            try await harness.executeReporting("INSERT INTO sources (label) VALUES ('Evil')")
            try await harness.executeReporting("""
                INSERT INTO bundles (id, archive_key, state, compression, member_count, raw_bytes, stored_bytes, hash, storage_class, archived_at)
                VALUES (900, 'bundles/evil.tar', 'archived', 'none', 3, \(bundleBytes.count), \(bundleBytes.count),
                        '\(PipelineHarness.sha256(Array(bundleBytes)))', 'STANDARD', now())
                """)
            for member in members {
                let name = try #require(member["name"] as? String)
                let path = String(name.dropFirst("Evil/".count))
                let hash = try #require(member["sha256"] as? String)
                try await harness.executeReporting("""
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key,
                        bundle_id, bundle_offset, stored_size_bytes, stored_hash, archived_at, modified_at)
                    SELECT id, '\(path)', '\(path)', 'regular', \(member["size"] as! Int), '\(hash)', 'archived', 'archive', 'bundles/evil.tar',
                        'bundles/evil.tar', 900, \(member["offset"] as! Int), \(member["size"] as! Int), '\(hash)', now(), now()
                    FROM sources WHERE label = 'Evil'
                    """)
            }

            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--source", "Evil"], to: directory)
            #expect(run.status == 1, "\(run.output)")
            #expect(run.files("restored") == ["Evil/good.txt"])
            let failed = (run.summary["failed"] as? [[String: String]]) ?? []
            #expect(failed.contains { $0["path"] == "Evil/../../escape.txt" && $0["code"] == "unsafePath" && $0["error"]?.contains("'..'") == true }, "\(failed)")
            #expect(failed.contains { $0["path"] == "Evil/link" && $0["code"] == "unsafePath" && $0["error"]?.contains("symbolic link") == true }, "\(failed)")
            #expect(FileManager.default.contents(atPath: directory + "/Evil/good.txt") == Data("a good file\n".utf8))
            #expect(!FileManager.default.fileExists(atPath: harness.work.path + "/escape.txt"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/escape.txt"))
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/Evil/link")) == nil)

            // The same symlink member through the ranged path (one member of the bundle): refused by its tar header.
            let ranged = try await harness.restore(["--path", "link"], to: restoreDirectory(harness, "ranged"))
            #expect(ranged.status == 1, "\(ranged.output)")
            #expect(ranged.output.contains("refused") && ranged.output.contains("symbolic link"), "\(ranged.output)")
        }
    }

    @Test("verify: a rolling sample covers every object; a corrupted object fails verify and restore; bit rot on the source is reported")
    func corruptionAndBitRot() async throws {
        try await PipelineHarness.with(.file) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<3 { files["big \(index).bin"] = PipelineHarness.bytes(count: 1_500_000, seed: UInt64(index + 1)) }
            files["small.txt"] = Array("a small text\n".utf8)
            for (path, bytes) in files { try harness.write(path, bytes) }
            #expect(try await harness.upload(label: "Disc C").status == 0)
            #expect(try await harness.archiveOnce(["--small-file-threshold", "1MiB"]).status == 0)
            let keys = Set(try await PipelineHarness.allKeys(harness.archive).filter { !$0.hasPrefix("catalog/") && !$0.hasSuffix(".manifest.json") })
            #expect(keys.count == 4)

            // Two half samples check every object once (oldest check first).
            let first = try await harness.uploader(["verify", "--sample", "50", "--json"])
            #expect(first.status == 0, "\(first.output)")
            let second = try await harness.uploader(["verify", "--sample", "50", "--json"])
            #expect(second.status == 0, "\(second.output)")
            let checked = (first.events("object") + second.events("object")).compactMap { $0["key"] as? String }
            #expect(checked.count == 4 && Set(checked) == keys, "\(checked)")
            #expect((first.events("object") + second.events("object")).allSatisfy { $0["outcome"] as? String == "ok" })
            #expect(second.summary["verified_last_30_days"] as? Int == 4)

            // Bit rot on the original disc: one file changed since it was archived.
            var rotten = files["big 1.bin"]!
            rotten[777] ^= 0x40
            try harness.write("big 1.bin", rotten)
            let against = try await harness.uploader(["verify", "--source", "Disc C", "--against", harness.source.path, "--json"])
            #expect(against.status == 1, "\(against.output)")
            let warnings = (against.summary["source_warnings"] as? [String]) ?? []
            #expect(warnings.count == 1 && warnings.first?.contains("big 1.bin: CHANGED") == true, "\(warnings)")

            // A corrupted archive object (same size, one byte flipped) is caught by its checksum.
            let row = try #require(try await harness.rows().first { $0.path == "big 2.bin" })
            let key = try #require(row.storageKey)
            let objectPath = harness.work.path + "/archive/" + key
            let handle = try #require(FileHandle(forUpdatingAtPath: objectPath))
            try handle.seek(toOffset: 1000)
            let byte = try #require(try handle.read(upToCount: 1)).first!
            try handle.seek(toOffset: 1000)
            try handle.write(contentsOf: Data([byte ^ 0x01]))
            try handle.close()
            let verify = try await harness.uploader(["verify", "--json"])
            #expect(verify.status == 1, "\(verify.output)")
            let failures = (verify.summary["failed"] as? [String]) ?? []
            #expect(failures.count == 1 && failures.first?.contains(key) == true && failures.first?.contains("checksum mismatch") == true, "\(failures)")

            let directory = restoreDirectory(harness)
            let restore = try await harness.restore(["--source", "Disc C"], to: directory)
            #expect(restore.status == 1, "\(restore.output)")
            let failed = (restore.summary["failed"] as? [[String: String]]) ?? []
            #expect(failed.count == 1 && failed.first?["code"] == "checksumMismatch" && failed.first?["path"] == "Disc C/big 2.bin", "\(failed)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/Disc C/big 2.bin"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/Disc C/.big 2.bin.partial"))
            #expect(restore.files("restored").count == 3)
        }
    }

    @Test("rebuild-catalog round trip: drop the database, rebuild from the export and newer manifests, restore, compare")
    func rebuildCatalogRoundTrip() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files = try RestoreTests.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let oldExport = try await harness.archive.getBytes(CatalogExportFormat.key)

            // A second source archived after that export: its bundle is only in its manifest, its large file only
            // in its own object metadata (file id, hashes, source label, path, version, kind, size, time).
            let second = try TemporaryDirectory("second")
            defer { second.remove() }
            FileManager.default.createFile(atPath: second.path + "/later.txt", contents: Data("written later\n".utf8))
            let laterBig = PipelineHarness.bytes(count: 2 << 20, seed: 77)
            FileManager.default.createFile(atPath: second.path + "/later big.bin", contents: Data(laterBig))
            let upload = try await Program.run("uploader", ["upload", second.path, "--label", "USB stick", "--json"], environment: harness.environment)
            #expect(upload.status == 0, "\(upload.output)")
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            // The export as it was before the second source: the whole one put back, the changes written since removed.
            _ = try await harness.archive.put(CatalogExportFormat.key, bytes: oldExport, options: PutOptions(storageClass: .standard))
            let changes = try await PipelineHarness.allKeys(harness.archive, prefix: CatalogExportFormat.changesPrefix)
            #expect(!changes.isEmpty, "the second drain wrote only the changed rows")
            #expect(await harness.archive.delete(keys: changes).isEmpty)
            let before = try await harness.uploader(["ls", "--json", "--all-versions"])

            // Disaster: a new, empty database.
            let database = try await TestDatabase.create()
            var environment = harness.environment
            environment["DATABASE_URL"] = try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?")
            let rebuild = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--json"], environment: environment)
            #expect(rebuild.status == 0, "everything recovered: \(rebuild.output)")
            let summary = UploaderRun(status: rebuild.status, output: rebuild.output).summary
            #expect(summary["export_found"] as? Bool == true, "\(rebuild.output)")
            #expect(summary["files_from_manifests"] as? Int == 1, "\(summary)")
            #expect(summary["bundles_from_manifests"] as? Int == 1, "\(summary)")
            #expect(summary["files_completed_from_archive"] as? Int == 1, "the late single file, placed by its metadata: \(summary)")
            let unrecovered = (summary["unrecovered"] as? [String]) ?? []
            #expect(unrecovered.isEmpty, "\(unrecovered)")

            // The rebuilt catalog lists the same archived files in the same places.
            let after = try await Program.run("uploader", ["ls", "--json", "--all-versions"], environment: environment)
            func placements(_ output: String) -> Set<String> {
                Set(UploaderRun(status: 0, output: output).events.compactMap { line -> String? in
                    guard line["path"] != nil else { return nil }
                    return ["source", "path", "version", "state", "sha256", "archive_key", "bundle_offset", "stored_sha256", "id"]
                        .map { "\(line[$0] ?? "-")" }.joined(separator: "|")
                })
            }
            #expect(placements(after.output) == placements(before.output), "\(after.output)")
            #expect(placements(after.output).count == files.count + 2)

            // The way back works from the rebuilt catalog.
            let directory = restoreDirectory(harness)
            let restore = try await Program.run("uploader", ["restore", "--source", "DVD 12", "--to", directory, "--json"], environment: environment)
            #expect(restore.status == 0, "\(restore.output)")
            try RestoreTests.expectRestored(harness, files, in: directory, label: "DVD 12")
            let later = try await Program.run("uploader", ["restore", "--path", "later.txt", "--to", directory, "--json"], environment: environment)
            #expect(later.status == 0, "\(later.output)")
            #expect(FileManager.default.contents(atPath: directory + "/USB stick/later.txt") == Data("written later\n".utf8))
            let big = try await Program.run("uploader", ["restore", "--path", "later big.bin", "--to", directory, "--json"], environment: environment)
            #expect(big.status == 0, "\(big.output)")
            #expect(FileManager.default.contents(atPath: directory + "/USB stick/later big.bin") == Data(laterBig))

            // Never into a database that holds a catalog.
            let refused = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL], environment: environment)
            #expect(refused.status == 2, "\(refused.output)")
            #expect(refused.output.contains("not empty"), "\(refused.output)")
            try? await database.drop()
        }
    }

    @Test("rebuild-catalog with objects gone from the archive (a bundle, a file stored alone): exactly their files come back failed, each naming its object; the rest archived; exit 1")
    func rebuildWithMissingObjects() async throws {
        try await PipelineHarness.with(.file) { harness in
            _ = try RestoreTests.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let listed = try await harness.uploader(["ls", "--json", "--all-versions"]).events.filter { $0["path"] != nil }
            // A duplicate's line shows its holder's object; the rows that name an object themselves are the archived ones.
            let stored = listed.filter { $0["state"] as? String == "archived" }
            let bundled = stored.compactMap { $0["bundle_offset"] is Int ? $0["archive_key"] as? String : nil }
            let alone = stored.compactMap { $0["bundle_offset"] is Int ? nil : $0["archive_key"] as? String }
            let lostBundle = try #require(bundled.sorted().first)
            let lostSingle = try #require(alone.sorted().first)
            // The bundle goes with its manifest: nothing in the archive knows those files any more but the export.
            let stem = String(lostBundle.prefix { $0 != "." })
            let gone = try await PipelineHarness.allKeys(harness.archive, prefix: stem) + [lostSingle]
            #expect(await harness.archive.delete(keys: gone).isEmpty)

            let database = try await TestDatabase.create()
            var environment = harness.environment
            environment["DATABASE_URL"] = try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?")
            let rebuild = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--json"], environment: environment)
            #expect(rebuild.status == 1, "files were lost: \(rebuild.output)")
            let unrecovered = (UploaderRun(status: rebuild.status, output: rebuild.output).summary["unrecovered"] as? [String]) ?? []
            for key in [lostBundle, lostSingle] {
                #expect(unrecovered.contains { $0.hasPrefix(key + ": catalogued for ") && $0.contains("missing from the archive") }, "\(key): \(unrecovered)")
            }
            try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
                var failed: [String: Int] = [:]
                var others: [String] = []
                for try await (key, state, error) in try await client.query(
                    "SELECT coalesce(archive_key, ''), state, coalesce(error, '') FROM objectstoragefiles", logger: TestEnvironment.logger
                ).decode((String, String, String).self) {
                    if state == "failed" {
                        #expect(error == "rebuild-catalog: the archive object \(key) is missing from the archive", "\(key): \(error)")
                        failed[key, default: 0] += 1
                    } else {
                        others.append("\(key) \(state)")
                    }
                }
                #expect(Set(failed.keys) == [lostBundle, lostSingle], "\(failed)")
                #expect(failed[lostBundle] == bundled.filter { $0 == lostBundle }.count)
                #expect(others.allSatisfy { $0.hasSuffix(" archived") || $0.hasSuffix(" duplicate") }, "\(others)")
                #expect(others.count + failed.values.reduce(0, +) == listed.count)
            }
            try? await database.drop()
        }
    }
}

/// What the kernel was asked, from `strace -f -y`: each file's sync before its rename, and the directories' after.
@Suite("restore: durability")
struct RestoreDurabilityTests {
    @Test("every restored file is synced before its rename; each directory that gained a name (and each above it) is synced once, after its last rename")
    func syncOrder() async throws {
        try await PipelineHarness.with(.file) { harness in
            // Small files in nested directories (bundles) and one file stored alone; ASCII names, as strace prints them.
            var files: [String: [UInt8]] = [:]
            for index in 0..<9 { files["a/b\(index % 3)/c/file-\(index).txt"] = PipelineHarness.bytes(count: 2_000 + index, seed: UInt64(index)) }
            files["a/top.txt"] = Array("top".utf8)
            files["big/alone.bin"] = PipelineHarness.bytes(count: 600_000, seed: 99)
            for (path, bytes) in files { _ = try harness.write(path, bytes) }
            #expect(try await harness.upload(label: "Synced").status == 0)
            let archived = try await harness.archiveOnce(RestoreTests.archiveOptions)
            #expect(archived.status == 0, "\(archived.output)")

            let directory = restoreDirectory(harness)
            let log = harness.work.path + "/strace.log"
            let run = try await Program.run("/usr/bin/strace", [
                "-f", "-qq", "-y", "-e", "trace=fsync,rename,renameat,renameat2", "-o", log,
                TestEnvironment.productsDirectory + "/uploader", "restore", "--source", "Synced", "--to", directory, "--json",
            ], environment: harness.environment)
            #expect(run.status == 0, "\(run.output)")
            try RestoreTests.expectRestored(harness, files, in: directory, label: "Synced")

            let calls = try StraceLog(path: log).calls
            let root = directory + "/Synced"
            let renames = calls.filter { $0.name.hasPrefix("rename") && ($0.descriptorPaths.first ?? "").hasPrefix(root) }
            let head = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").prefix(8).joined(separator: "\n")
            #expect(renames.count == files.count, "one rename per restored file: \(renames.map(\.arguments)); the log begins: \(head)")
            let fsyncs = calls.filter { $0.name == "fsync" }
            for rename in renames {
                let directoryPath = rename.descriptorPaths[0]
                let partial = directoryPath + "/" + (rename.strings.first ?? "?")
                #expect(partial.hasSuffix(".partial"), "\(rename.arguments)")
                #expect(fsyncs.contains { $0.descriptorPaths == [partial] && $0.finished < rename.started },
                        "\(partial) was synced before its rename")
            }
            var isDirectory: ObjCBool = false
            let directorySyncs = fsyncs.filter {
                guard let path = $0.descriptorPaths.first, path.hasPrefix(directory) else { return false }
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            let lastRename = renames.map(\.finished).max() ?? 0
            // Every directory on the way from the destination to a restored file: it holds a new name.
            var expected = Set<String>()
            for path in files.keys {
                var components = ("Synced/" + path).split(separator: "/").dropLast().map(String.init)
                while true {
                    expected.insert(([directory] + components).joined(separator: "/"))
                    if components.isEmpty { break }
                    components.removeLast()
                }
            }
            let synced = directorySyncs.filter { $0.started > lastRename }.compactMap(\.descriptorPaths.first)
            #expect(Set(synced) == expected, "synced after the renames: \(synced.sorted()), expected \(expected.sorted())")
            #expect(directorySyncs.count == expected.count, "each directory once, not once per file: \(directorySyncs.compactMap(\.descriptorPaths.first).sorted())")
        }
    }
}

/// `strace -f -y -o` output: each call with its arguments, and the log lines where it started and where it returned
/// (a call interrupted by another thread's is split into `<unfinished ...>` and `<... resumed>`).
struct StraceLog {
    struct Call {
        var name: String
        var arguments: String
        var started: Int
        var finished: Int
        /// The paths strace shows for descriptors (`7</a/b>`), in order.
        var descriptorPaths: [String] {
            arguments.matches(of: /\d+<([^>]*)>/).map { String($0.output.1) }
        }
        /// The quoted string arguments, in order.
        var strings: [String] {
            arguments.matches(of: /"([^"]*)"/).map { String($0.output.1) }
        }
    }

    var calls: [Call] = []

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var pending: [Substring: (name: String, arguments: String, line: Int)] = [:]
        for (index, line) in text.split(separator: "\n").enumerated() {
            guard let space = line.firstIndex(of: " ") else { continue }
            let pid = line[..<space]
            let rest = line[line.index(after: space)...].drop { $0 == " " }  // strace pads the pid column
            if let unfinished = rest.range(of: " <unfinished ...>") {
                let call = rest[..<unfinished.lowerBound]
                guard let open = call.firstIndex(of: "(") else { continue }
                pending[pid] = (String(call[..<open]), String(call[call.index(after: open)...]), index)
            } else if rest.hasPrefix("<... "), let started = pending.removeValue(forKey: pid) {
                let tail = rest.split(separator: ">", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
                calls.append(Call(name: started.name, arguments: started.arguments + tail, started: started.line, finished: index))
            } else if let open = rest.firstIndex(of: "("), !rest.hasPrefix("+++"), !rest.hasPrefix("---") {
                calls.append(Call(name: String(rest[..<open]), arguments: String(rest[rest.index(after: open)...]), started: index, finished: index))
            }
        }
    }
}

@Suite("restore: units")
struct RestoreUnitTests {
    @Test("a file stored alone describes itself in ASCII metadata: unicode, spaces and '%' survive; a path too long is left out")
    func singleObjectMetadataRoundTrip() throws {
        let when = Date(timeIntervalSince1970: 1_000_000_000.25)
        let metadata = SingleObjectMetadata(
            fileID: 42, sha256: String(repeating: "a", count: 64), originalSHA256: String(repeating: "b", count: 64), sourceLabel: "DVD 12 / été",
            path: "vidéos/100% fun\nnew line.dv", version: 3, kind: "video", originalSize: 123, modifiedAt: when)
        let headers = metadata.headers
        #expect(headers.values.allSatisfy { $0.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 } }, "\(headers)")
        #expect(SingleObjectMetadata(headers: headers) == metadata)

        var long = metadata
        long.path = String(repeating: "é/", count: 400)
        let shortened = try #require(SingleObjectMetadata(headers: long.headers))
        #expect(shortened.path == nil && shortened.sourceLabel == nil && shortened.fileID == 42 && shortened.sha256 == metadata.sha256)
    }

    @Test("relative paths that would leave the destination are refused")
    func unsafePaths() throws {
        for bad in ["/etc/passwd", "../up", "a/../../b", "a/..", "", "./", "a\u{0}b"] {
            #expect(throws: (any Error).self, "\(bad)") { try SafeRelativePath(bad) }
        }
        #expect(try SafeRelativePath("a/./b//c.txt").description == "a/b/c.txt")
        #expect(try SafeRelativePath("..hidden/x..y").description == "..hidden/x..y")
    }

    @Test("the tar reader reads what the archiver's tar writer writes: long and non-ASCII names, offsets, data")
    func tarRoundTrip() throws {
        let names = ["a/b.txt", String(repeating: "ä/", count: 80) + "file", "empty"]
        var stream: [UInt8] = []
        var offsets: [Int64] = []
        for (index, name) in names.enumerated() {
            let data = Array(repeating: UInt8(index + 65), count: index * 700)
            stream += TarFormat.headers(name: name, size: Int64(data.count), modificationTime: 1_700_000_000)
            offsets.append(Int64(stream.count))
            stream += data + TarFormat.padding(for: Int64(data.count))
        }
        stream += TarFormat.trailer
        let path = NSTemporaryDirectory() + "tar-\(UUID().uuidString).tar"
        FileManager.default.createFile(atPath: path, contents: Data(stream))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = TarReader(try PlainFileReader(path: path))
        for (index, name) in names.enumerated() {
            let entry = try #require(try reader.next())
            #expect(entry.name == name)
            #expect(entry.dataOffset == offsets[index])
            #expect(entry.isRegularFile)
            var data: [UInt8] = []
            while case let chunk = try reader.readData(max: 100), !chunk.isEmpty { data += chunk }
            #expect(data == Array(repeating: UInt8(index + 65), count: index * 700))
        }
        #expect(try reader.next() == nil)
    }
}
