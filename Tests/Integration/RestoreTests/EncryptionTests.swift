import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import SystemIO
import Testing
import TestSupport

/// Encrypted sources (age) through the real programs: `uploader upload --encrypt-to`, the archiver, restore,
/// rebuild-catalog, against PostgreSQL and moto S3 (SigV4 enforced), with Debian's `age` as the outside reader.
@Suite("encrypted sources end to end", .serialized, .onOwnThreads)
struct EncryptionTests {
    static let marker = "MARKER-7f3a9c-PLAINTEXT-MUST-NOT-LEAK"
    static let label = "Tax papers 2019"

    /// Small files (bundled), a duplicate, an empty file, a video (kept as it is), and a 40 MB scan (stored
    /// alone, multipart). Every file holds the marker string.
    static func makeTree(_ harness: PipelineHarness) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for index in 0..<6 {
            files["letters/note \(index) to grandma.txt"] = Array("\(marker) letter \(index)\n".utf8) + PipelineHarness.bytes(count: 3000 + index, seed: UInt64(index))
        }
        files["letters/copy of note 0.txt"] = files["letters/note 0 to grandma.txt"]
        files["taxes/return-2019 ünïcode.pdf"] = Array("%PDF-1.4 \(marker)\n".utf8) + PipelineHarness.bytes(count: 50_000, seed: 70)
        files["empty.txt"] = []
        files["video/holiday clip.mpg"] = [0x00, 0x00, 0x01, 0xBA] + Array(marker.utf8) + PipelineHarness.bytes(count: 60_000, seed: 71)
        files["scans/passport scan.tiff"] = Array(marker.utf8) + PipelineHarness.bytes(count: 40 << 20, seed: 72)
        for (path, bytes) in files { try harness.write(path, bytes) }
        for (index, path) in files.keys.sorted().enumerated() {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_300_000_000.5 + Double(index) * 100)],
                                                  ofItemAtPath: harness.source.path + "/" + path)
        }
        return files
    }

    /// `age-keygen -o path` (Debian's): the identity file, and its recipient.
    static func ageKeygen(_ path: String) async throws -> String {
        let result = try await Subprocess.run("/usr/bin/age-keygen", ["-o", path])
        #expect(result.status == 0, "\(result.output)")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try #require(text.split(separator: "\n").first { $0.hasPrefix("# public key: ") }.map { String($0.dropFirst("# public key: ".count)) })
    }

    /// Every object of both buckets with its metadata, each bundle's members and the catalog export decompressed:
    /// all that someone reading the buckets can see.
    static func everythingInTheBuckets(_ harness: PipelineHarness) async throws -> [(key: String, text: [UInt8])] {
        var seen: [(String, [UInt8])] = []
        for store in [harness.staging, harness.archive] {
            for key in try await PipelineHarness.allKeys(store) {
                let info = try await store.head(key)
                var bytes = try await Self.read(store, key)
                if key.hasSuffix(".gz") || key.hasSuffix(".zst") {
                    let path = harness.work.path + "/decompress-\(UUID().uuidString)"
                    FileManager.default.createFile(atPath: path, contents: Data(bytes))
                    let tool = key.hasSuffix(".gz") ? "gzip" : "zstd"
                    let result = try await Subprocess.run("/bin/sh", ["-c", "\(tool) -dc < '\(path)' > '\(path).out'"])
                    #expect(result.status == 0, "\(key): \(result.output)")
                    bytes = Array(FileManager.default.contents(atPath: path + ".out") ?? Data())
                }
                let metadata = (info?.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "\n")
                seen.append((key, Array(key.utf8) + [0x0A] + Array(metadata.utf8) + [0x0A] + bytes))
            }
        }
        return seen
    }

    /// Whether `needle`'s UTF-8 bytes occur in `haystack`, searched by Foundation (built optimized). The
    /// byte-by-byte loop it replaces, in a debug build, took over ten seconds on this test's buckets and held a
    /// thread of the shared pool all that time, stalling every other test of the process.
    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let pattern = Data(needle.utf8)
        guard !pattern.isEmpty else { return false }
        return Data(haystack).range(of: pattern) != nil
    }

    @Test("the leak search finds a needle at the start, in the middle and at the end, and not one that is absent")
    func leakSearchFinds() {
        let bytes = Array("photo.raw, then disc14 and 0123abcd".utf8)
        #expect(Self.contains(bytes, "photo.raw") && Self.contains(bytes, "disc14") && Self.contains(bytes, "0123abcd"))
        #expect(!Self.contains(bytes, "disc15") && !Self.contains(bytes, "") && !Self.contains([], "a"))
    }

    @Test("upload killed mid-file and resumed, archived, restored byte for byte; no plaintext, name or path in either bucket; age reads every object; wrong identity writes nothing; a flipped byte is caught")
    func encryptedSourceEndToEnd() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files = try Self.makeTree(harness)
            let keyPath = harness.work.path + "/key.txt"
            let recipient = try await Self.ageKeygen(keyPath)
            let encrypt = ["--encrypt-to", recipient, "--concurrency", "1"]

            // Killed once a part of the 40 MB scan (16 MB parts) is stored, then run again: it resumes, byte-identical.
            // The first run is held to 2 MB/s so the kill lands mid-file even when this process is slow to poll
            // (unlimited, the last 8 MB after the second part took a tenth of a second and a busy CI run missed it;
            // at 4 MB/s a full local run still missed the 6 s between the first part and the end once).
            let child = try harness.startUpload(label: Self.label, extra: encrypt + ["--bwlimit", "2M"])
            let partsBeforeKill = try await harness.waitForStoredParts(1, of: child)
            child.signal(SIGKILL)
            let killed = try await child.wait()
            #expect(killed.status == 128 + SIGKILL, "the uploader was killed, not finished: \(killed.output)")
            #expect(partsBeforeKill >= 1)
            let resumed = try await harness.upload(label: Self.label, extra: encrypt)
            #expect(resumed.status == 0, "\(resumed.output)")
            #expect(resumed.output.contains("resuming an interrupted upload"), "\(resumed.output)")
            let sent = try #require(resumed.summary["bytes_uploaded"] as? Int)
            #expect(sent < 40 << 20, "the parts stored before the kill were kept: \(sent) bytes sent")

            // The catalog: keyed hashes (no plaintext SHA-256), the ciphertext's hash as stored_hash, the video kept.
            let plainHashes = Set(files.values.map(PipelineHarness.sha256))
            let rows = try await harness.rows()
            #expect(rows.count == files.count)
            #expect(rows.allSatisfy { !plainHashes.contains($0.hash ?? "") }, "no plaintext SHA-256 in the catalog")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE details ? 'sealed' AND details->>'encryption' = 'age'", as: Int64.self) == Int64(files.count))
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE kind = 'video'", as: Int64.self) == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE details->>'video_not_transcoded' = 'encrypted'", as: Int64.self) == 1)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'duplicate'", as: Int64.self) == 1, "the copy is stored once")

            // Staging holds the age files while they wait for the archiver.
            let staged = try await Self.everythingInTheBuckets(harness)
            #expect(staged.count == files.count - 1, "one object per stored file (the copy is a duplicate): \(staged.map(\.key))")

            let archived = try await harness.archiveOnce(RestoreTests.archiveOptions)
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state NOT IN ('archived', 'duplicate')", as: Int64.self) == 0)
            let exported = try await Program.run("archiver", ["export-catalog"], environment: harness.environment)
            #expect(exported.status == 0, "\(exported.output)")

            // Nothing of the plaintext, and no name or path, anywhere in either bucket.
            let visible = try await Self.everythingInTheBuckets(harness) + staged
            #expect(visible.contains { $0.key == CatalogExportFormat.key }, "the export was written")
            var words = [Self.marker, Self.label, "Tax papers"]
            for path in files.keys {
                words.append(path)
                words += path.split(separator: "/").map(String.init)
                words += path.split(separator: "/").flatMap { $0.split(separator: " ") }.map(String.init).filter { $0.count >= 5 }
            }
            var leaks: [String] = []
            for (key, bytes) in visible {
                leaks += Set(words).filter { Self.contains(bytes, $0) }.map { "\(key) shows '\($0)'" }
                leaks += plainHashes.filter { Self.contains(bytes, $0) }.map { "\(key) shows the plaintext SHA-256 \($0)" }
            }
            #expect(leaks.isEmpty, "\(leaks)")
            #expect(visible.filter { $0.key.hasPrefix("sources/") }.count == staged.count && visible.count >= staged.count + 4,
                    "staging, then the bundle, its manifest, the scan and the export: \(visible.map(\.key))")

            // Debian's age opens what we stored, with nothing of ours: the scan stored alone, a bundle member.
            let scanKey = try #require(try await harness.scalar(
                "SELECT archive_key FROM objectstoragefiles WHERE bundle_id IS NULL AND size_bytes = \(40 << 20 + Self.marker.utf8.count)", as: String.self))
            #expect(scanKey.hasSuffix(".age"))
            let restoredScan = try await Self.ageDecrypt(harness, harness.archive, scanKey, identity: keyPath)
            #expect(restoredScan == files["scans/passport scan.tiff"])
            let bundleKey = try #require(try await harness.scalar("SELECT archive_key FROM bundles WHERE state = 'archived' LIMIT 1", as: String.self))
            let tarPath = harness.work.path + "/bundle.tar"
            FileManager.default.createFile(atPath: tarPath, contents: Data(try await Self.read(harness.archive, bundleKey)))
            let untar = try await Subprocess.run("/bin/tar", ["-xf", tarPath, "-C", harness.work.path])
            #expect(untar.status == 0, "\(untar.output)")
            let members = try FileManager.default.contentsOfDirectory(atPath: harness.work.path + "/encrypted")
            #expect(!members.isEmpty)
            var opened = 0
            for member in members {
                let out = harness.work.path + "/member.out"
                let result = try await Subprocess.run("/usr/bin/age", ["-d", "-i", keyPath, "-o", out, harness.work.path + "/encrypted/" + member])
                #expect(result.status == 0, "\(member): \(result.output)")
                let plain = Array(FileManager.default.contents(atPath: out) ?? Data())
                #expect(files.values.contains(plain), "\(member) decrypts to one of the files")
                opened += 1
            }
            #expect(opened == members.count)

            // The README's recipe: names and paths from the object metadata and the manifest, with base64, jq and age.
            let sealedMetadata = try #require(try await harness.archive.head(scanKey)?.metadata["sealed"])
            FileManager.default.createFile(atPath: harness.work.path + "/sealed.txt", contents: Data(sealedMetadata.utf8))
            let placement = try await Subprocess.run("/bin/sh", ["-c", "base64 -d < '\(harness.work.path)/sealed.txt' | age -d -i '\(keyPath)'"])
            #expect(placement.status == 0 && placement.output.contains("\"path\":\"scans\\/passport scan.tiff\"") || placement.output.contains("\"path\":\"scans/passport scan.tiff\""), "\(placement.output)")
            let manifestKey = try #require(try await harness.scalar("SELECT manifest_key FROM bundles WHERE archive_key = '\(bundleKey)'", as: String.self))
            FileManager.default.createFile(atPath: harness.work.path + "/manifest.json", contents: Data(try await harness.archive.getBytes(manifestKey)))
            let recipe = """
                cd '\(harness.work.path)' && jq -r '.members[] | select(.sealed) | .member + " " + .sealed' manifest.json | while read -r member sealed; do
                    path=$(printf '%s' "$sealed" | base64 -d | age -d -i '\(keyPath)' | jq -r .path)
                    mkdir -p "restored-by-hand/$(dirname "$path")" && age -d -i '\(keyPath)' "$member" > "restored-by-hand/$path"
                done
                """
            let byHand = try await Subprocess.run("/bin/sh", ["-c", recipe])
            #expect(byHand.status == 0, "\(byHand.output)")
            let handFiles = try PipelineHarness.files(under: harness.work.path + "/restored-by-hand")
            #expect(handFiles.count == members.count && handFiles.allSatisfy { files[$0.key] == $0.value }, "\(handFiles.keys.sorted()) vs \(members.sorted()): \(byHand.output)")

            // A later upload without the key is refused; so is one to other recipients.
            let unencrypted = try await harness.upload(label: Self.label)
            #expect(unencrypted.status == 2, "\(unencrypted.output)")
            #expect(unencrypted.output.contains("is encrypted"), "\(unencrypted.output)")
            let otherKey = harness.work.path + "/other.txt"
            let otherRecipient = try await Self.ageKeygen(otherKey)
            let other = try await harness.upload(label: Self.label, extra: ["--encrypt-to", otherRecipient])
            #expect(other.status == 2, "\(other.output)")
            #expect(other.output.contains("other recipients"), "\(other.output)")

            // Without a key, or with the wrong one: one clear error, and the destination is not even created.
            for (arguments, what) in [([String](), "pass --identity"), (["--identity", otherKey], "none of the identities")] {
                let directory = restoreDirectory(harness, "refused")
                let refused = try await harness.restore(["--source", Self.label] + arguments, to: directory)
                #expect(refused.status == 2, "\(refused.output)")
                #expect(refused.output.contains(what), "\(refused.output)")
                #expect(!FileManager.default.fileExists(atPath: directory), "nothing written")
            }

            // With the identity: every file back, byte for byte, with its time.
            let directory = restoreDirectory(harness)
            let restore = try await harness.restore(["--source", Self.label, "--identity", keyPath], to: directory)
            #expect(restore.status == 0, "\(restore.output)")
            try RestoreTests.expectRestored(harness, files, in: directory, label: Self.label)
            let again = try await harness.restore(["--source", Self.label, "--identity", keyPath], to: directory)
            #expect(again.files("already_present").count == files.count, "a second run recognises the plaintext in place")

            let sources = try await harness.uploader(["sources", "--json"])
            let source = try #require(sources.events.first)
            #expect((source["encryption"] as? String)?.hasPrefix("age, to 1 recipient") == true, "\(sources.output)")
            #expect(source["videos_not_transcoded"] as? Int == 1)

            // One flipped byte in the scan's stored copy: that file is refused, the others come back.
            var tampered = try await Self.read(harness.archive, scanKey)
            tampered[tampered.count / 2] ^= 0x01
            _ = try await harness.archive.put(scanKey, bytes: tampered, options: PutOptions(storageClass: .deepArchive))
            let afterFlip = restoreDirectory(harness, "after-flip")
            let flipped = try await harness.restore(["--source", Self.label, "--identity", keyPath], to: afterFlip)
            #expect(flipped.status == 1, "\(flipped.output)")
            #expect(flipped.files("failed") == ["\(Self.label)/scans/passport scan.tiff"], "\(flipped.output)")
            #expect(flipped.output.contains("cannot be decrypted"), "\(flipped.output)")
            #expect(!FileManager.default.fileExists(atPath: afterFlip + "/\(Self.label)/scans/passport scan.tiff"))
            #expect(try PipelineHarness.files(under: afterFlip + "/" + Self.label).count == files.count - 1)
        }
    }

    /// Runs `command` on a terminal (`script`), typing `lines`: passphrases are read from the terminal only.
    static func onTerminal(_ harness: PipelineHarness, _ command: String, typing lines: [String]) async throws -> Subprocess.Result {
        let typed = lines.map { $0 + "\\n" }.joined()
        var environment = harness.environment
        environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        return try await Subprocess.run("/bin/sh", ["-c", "printf '\(typed)' | script -qec '\(command)' /dev/null"], environment: environment)
    }

    /// An object's bytes, asking for its restore first when it is in Deep Archive (moto and the file store restore at once).
    static func read(_ store: any ObjectStore, _ key: String) async throws -> [UInt8] {
        if let info = try await store.head(key), !info.restore.isReadable { _ = try await store.requestRestore(key, days: 1, tier: .standard) }
        return try await store.getBytes(key)
    }

    static func ageDecrypt(_ harness: PipelineHarness, _ store: any ObjectStore, _ key: String, identity: String) async throws -> [UInt8] {
        let encrypted = harness.work.path + "/object.age"
        let plain = harness.work.path + "/object.plain"
        FileManager.default.createFile(atPath: encrypted, contents: Data(try await Self.read(store, key)))
        let result = try await Subprocess.run("/usr/bin/age", ["-d", "-i", identity, "-o", plain, encrypted])
        #expect(result.status == 0, "\(key): \(result.output)")
        return Array(FileManager.default.contents(atPath: plain) ?? Data())
    }

    @Test("a file changed (same size and time) after its encrypted upload was killed: no part is re-encrypted under the old key; the next run sends it anew")
    func changedAfterKill() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let path = try harness.write("scans/album.tiff", PipelineHarness.bytes(count: 40 << 20, seed: 90))
            let when = Date(timeIntervalSince1970: 1_400_000_000)
            try FileManager.default.setAttributes([.modificationDate: when], ofItemAtPath: path)
            let recipient = try await Self.ageKeygen(harness.work.path + "/key.txt")
            let encrypt = ["--encrypt-to", recipient, "--concurrency", "1"]
            let child = try harness.startUpload(label: "Album", extra: encrypt + ["--bwlimit", "2M"])
            #expect(try await harness.waitForStoredParts(1, of: child) >= 1)
            child.signal(SIGKILL)
            let killed = try await child.wait()
            #expect(killed.status == 128 + SIGKILL, "the uploader was killed, not finished: \(killed.output)")

            // Rewritten in place: same size, same modification time, other bytes (what a size-and-time check misses).
            let changed = PipelineHarness.bytes(count: 40 << 20, seed: 91)
            FileManager.default.createFile(atPath: path, contents: Data(changed))
            try FileManager.default.setAttributes([.modificationDate: when], ofItemAtPath: path)
            let second = try await harness.upload(label: "Album", extra: encrypt)
            #expect(second.status == 1, "\(second.output)")
            #expect(second.output.contains("changed since its interrupted upload"), "\(second.output)")
            #expect(try await harness.staging.listMultipartUploads(prefix: "").isEmpty, "the old upload and its parts are gone")
            #expect(try await harness.scalar("SELECT count(*) FROM pending_uploads", as: Int64.self) == 0)

            let third = try await harness.upload(label: "Album", extra: encrypt)
            #expect(third.status == 0, "\(third.output)")
            let row = try #require(try await harness.rows().first)
            #expect(row.state == "staged")
            let stored = try #require(try await harness.scalar("SELECT stored_hash FROM objectstoragefiles WHERE id = \(row.id)", as: String.self))
            #expect(try await harness.stagedHash(try #require(row.storageKey)) == stored)
            #expect(try await Self.ageDecrypt(harness, harness.staging, try #require(row.storageKey), identity: harness.work.path + "/key.txt") == changed)
        }
    }

    @Test("rebuild-catalog from the archive alone: refused without the identity (database left empty), names and paths back with it")
    func rebuildWithIdentity() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<4 { files["private/letter \(index).txt"] = Array("\(Self.marker) \(index)".utf8) }
            files["private/big.bin"] = PipelineHarness.bytes(count: 3 << 20, seed: 5)
            for (path, bytes) in files { try harness.write(path, bytes) }
            let keyPath = harness.work.path + "/key.txt"
            let recipient = try await Self.ageKeygen(keyPath)
            #expect(try await harness.upload(label: Self.label, extra: ["--encrypt-to", recipient]).status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            #expect(try await Program.run("archiver", ["export-catalog"], environment: harness.environment).status == 0)
            let before = try await harness.uploader(["ls", "--json", "--all-versions"])

            let database = try await TestDatabase.create()
            var environment = harness.environment
            environment["DATABASE_URL"] = try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?")
            let refused = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL], environment: environment)
            #expect(refused.status == 2, "\(refused.output)")
            #expect(refused.output.contains("encrypted source"), "\(refused.output)")
            let empty = try await Program.run("uploader", ["sources", "--json"], environment: environment)
            #expect(!empty.output.contains("\"label\""), "the failed rebuild left nothing: \(empty.output)")

            let rebuilt = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--identity", keyPath, "--json"], environment: environment)
            #expect(rebuilt.status == 0, "\(rebuilt.output)")
            let after = try await Program.run("uploader", ["ls", "--json", "--all-versions"], environment: environment)
            func placements(_ output: String) -> Set<String> {
                Set(UploaderRun(status: 0, output: output).events.compactMap { line -> String? in
                    guard line["path"] != nil else { return nil }
                    return ["source", "path", "version", "state", "sha256", "archive_key", "stored_sha256", "id"].map { "\(line[$0] ?? "-")" }.joined(separator: "|")
                })
            }
            #expect(placements(after.output) == placements(before.output), "\(after.output)")
            #expect(placements(after.output).count == files.count)
            let directory = restoreDirectory(harness)
            let restore = try await Program.run("uploader", ["restore", "--source", Self.label, "--identity", keyPath, "--to", directory, "--json"], environment: environment)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(try PipelineHarness.files(under: directory + "/" + Self.label) == files)
            try? await database.drop()
        }
    }

    @Test("uploader image --encrypt-to: the whole disc image is one age file in the archive, and comes back byte for byte")
    func encryptedDiscImage() async throws {
        try await PipelineHarness.with(.file) { harness in
            let tree = harness.work.path + "/disc-tree"
            try FileManager.default.createDirectory(atPath: tree + "/DCIM", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: tree + "/DCIM/photo.raw", contents: Data(Array(Self.marker.utf8) + PipelineHarness.bytes(count: 300_000, seed: 8)))
            let iso = harness.work.path + "/disc14.iso"
            let xorriso = try #require(["/usr/bin/xorriso", "/bin/xorriso"].first { FileManager.default.isExecutableFile(atPath: $0) }, "xorriso is installed by scripts/test")
            #expect(try await Subprocess.run(xorriso, ["-as", "mkisofs", "-quiet", "-J", "-R", "-o", iso, tree]).status == 0)
            let keyPath = harness.work.path + "/key.txt"
            let recipient = try await Self.ageKeygen(keyPath)
            let imaged = try await harness.uploader(["image", iso, "--label", "DVD 14", "--json", "--encrypt-to", recipient])
            #expect(imaged.status == 0, "\(imaged.output)")
            #expect(try await harness.archiveOnce().status == 0)
            let key = try #require(try await harness.scalar("SELECT archive_key FROM objectstoragefiles WHERE kind = 'disc_image'", as: String.self))
            let stored = try await Self.read(harness.archive, key)
            #expect(stored.starts(with: Array("age-encryption.org/v1\n".utf8)))
            #expect(!Self.contains(stored, Self.marker) && !Self.contains(stored, "photo.raw") && !key.contains("disc14"))
            let original = try #require(FileManager.default.contents(atPath: iso))
            #expect(try await Self.ageDecrypt(harness, harness.archive, key, identity: keyPath) == Array(original))
            let directory = restoreDirectory(harness)
            let run = try await harness.restore(["--source", "DVD 14", "--identity", keyPath], to: directory)
            #expect(run.status == 0, "\(run.output)")
            #expect(FileManager.default.contents(atPath: directory + "/DVD 14/disc14.iso") == original)
        }
    }

    @Test("dedupe: the same file in two sources to the same recipients is stored once; to other recipients, or in the clear, it is not")
    func dedupeAcrossSources() async throws {
        try await PipelineHarness.with(.file) { harness in
            let keyPath = harness.work.path + "/key.txt"
            let recipient = try await Self.ageKeygen(keyPath)
            let other = try await Self.ageKeygen(harness.work.path + "/other.txt")
            try harness.write("letter.txt", "\(Self.marker) the same letter")
            for (label, extra) in [("A", ["--encrypt-to", recipient]), ("B", ["--encrypt-to", recipient]), ("C", ["--encrypt-to", other]), ("D", [])] {
                let run = try await harness.upload(label: label, extra: extra)
                #expect(run.status == 0, "\(label): \(run.output)")
            }
            let states = try await harness.rows().map(\.state)
            #expect(states.sorted() == ["duplicate", "staged", "staged", "staged"], "B is A's duplicate; C (other key) and D (clear) are stored: \(states)")
            #expect(try await harness.scalar(
                "SELECT s.label FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id WHERE f.state = 'duplicate'", as: String.self) == "B")

            // Another machine (another data directory, the same catalog and buckets) does not hold A's dedupe key:
            // refused, and told how; with --identity once, the key comes back from the catalog and stays.
            let elsewhere = ["BACKUP_DATA_DIR": harness.work.path + "/other-machine"]
            try harness.write("second.txt", "a second letter")
            let refused = try await harness.upload(label: "A", extra: ["--encrypt-to", recipient], environment: elsewhere)
            #expect(refused.status == 2 && refused.output.contains("--identity"), "\(refused.output)")
            let recovered = try await harness.upload(label: "A", extra: ["--encrypt-to", recipient, "--identity", keyPath], environment: elsewhere)
            #expect(recovered.status == 0, "\(recovered.output)")
            let keys = try FileManager.default.contentsOfDirectory(atPath: harness.work.path + "/other-machine/keys")
            #expect(keys.count == 1 && keys[0].hasPrefix("dedupe-"))
            let mode = try FileManager.default.attributesOfItem(atPath: harness.work.path + "/other-machine/keys/" + keys[0])[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let again = try await harness.upload(label: "A", extra: ["--encrypt-to", recipient], environment: elsewhere)
            #expect(again.status == 0, "\(again.output)")
        }
    }

    @Test("a passphrase source: refused without it or with another, dedupe inside the source, restore with the passphrase file")
    func passphraseSource() async throws {
        try await PipelineHarness.with(.file) { harness in
            let secret = harness.work.path + "/passphrase.txt"
            let wrong = harness.work.path + "/wrong.txt"
            FileManager.default.createFile(atPath: secret, contents: Data("correct horse battery staple\n".utf8))
            FileManager.default.createFile(atPath: wrong, contents: Data("not the passphrase\n".utf8))
            let files = ["a.txt": Array("\(Self.marker) a".utf8), "b.txt": Array("\(Self.marker) a".utf8), "c.bin": PipelineHarness.bytes(count: 20_000, seed: 3)]
            for (path, bytes) in files { try harness.write(path, bytes) }
            let first = try await harness.upload(label: "Scans", extra: ["--passphrase-file", secret])
            #expect(first.status == 0, "\(first.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'duplicate'", as: Int64.self) == 1)
            try harness.write("d.txt", "later")
            let withWrong = try await harness.upload(label: "Scans", extra: ["--passphrase-file", wrong])
            #expect(withWrong.status == 2, "\(withWrong.output)")
            #expect(withWrong.output.contains("passphrase does not open"), "\(withWrong.output)")
            let second = try await harness.upload(label: "Scans", extra: ["--passphrase-file", secret])
            #expect(second.status == 0, "\(second.output)")
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)

            let directory = restoreDirectory(harness)
            let refused = try await harness.restore(["--source", "Scans", "--passphrase-file", wrong], to: directory)
            #expect(refused.status == 2, "\(refused.output)")
            #expect(!FileManager.default.fileExists(atPath: directory))
            let restore = try await harness.restore(["--source", "Scans", "--passphrase-file", secret], to: directory)
            #expect(restore.status == 0, "\(restore.output)")
            var expected = files
            expected["d.txt"] = Array("later".utf8)
            #expect(try PipelineHarness.files(under: directory + "/Scans") == expected)

            // The audit's verdict needs no key: it checks the stored age files against their recorded SHA-256.
            let audit = try await harness.uploader(["audit", "--source", "Scans"])
            #expect(audit.status == 0, "\(audit.output)")

            // A restore that selects nothing of the encrypted source needs no key for it.
            try harness.write("clear/readme.txt", "in the clear")
            #expect(try await harness.upload(label: "Clear notes", path: harness.source.path + "/clear").status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let clearOnly = try await harness.restore(["--path", "readme.txt"], to: directory + "/clear-only")
            #expect(clearOnly.status == 0 && clearOnly.files("restored") == ["Clear notes/readme.txt"], "\(clearOnly.output)")
            let both = try await harness.restore(["--path", "*.txt"], to: directory + "/both")
            #expect(both.status == 2 && both.output.contains("source 'Scans'"), "\(both.output)")

            // The original medium against the archive: the keyed hashes need the source's key.
            let verified = try await harness.uploader(["verify", "--source", "Scans", "--against", harness.source.path, "--passphrase-file", secret, "--json"])
            #expect(verified.status == 0, "\(verified.output)")
            #expect(verified.summary["source_files_compared"] as? Int == expected.count, "\(verified.output)")
            try harness.write("c.bin", "bit rot")
            let rotten = try await harness.uploader(["verify", "--source", "Scans", "--against", harness.source.path, "--passphrase-file", secret, "--json"])
            #expect(rotten.status == 1 && rotten.output.contains("c.bin: CHANGED"), "\(rotten.output)")
            let keyless = try await harness.uploader(["verify", "--source", "Scans", "--against", harness.source.path])
            #expect(keyless.status == 2 && keyless.output.contains("pass --passphrase"), "\(keyless.output)")

            // --passphrase asks twice on the terminal (never a flag value); two different answers store nothing.
            try harness.write("typed/e.txt", "typed on a terminal")
            let uploader = TestEnvironment.productsDirectory + "/uploader"
            let differ = try await Self.onTerminal(harness, "\(uploader) upload \(harness.source.path)/typed --label Typed --passphrase", typing: ["one", "two"])
            #expect(differ.status == 2 && differ.output.contains("the two passphrases differ"), "\(differ.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM sources WHERE label = 'Typed'", as: Int64.self) == 0)
            let typed = try await Self.onTerminal(harness, "\(uploader) upload \(harness.source.path)/typed --label Typed --passphrase", typing: ["tiger lily", "tiger lily"])
            #expect(typed.status == 0, "\(typed.output)")
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let typedBack = try await Self.onTerminal(
                harness, "\(uploader) restore --source Typed --passphrase --to \(directory)/typed-back", typing: ["tiger lily"])
            #expect(typedBack.status == 0, "\(typedBack.output)")
            #expect(FileManager.default.contents(atPath: directory + "/typed-back/Typed/e.txt") == Data("typed on a terminal".utf8))

            // A source that already holds clear files never turns encrypted.
            #expect(try await harness.upload(label: "Clear").status == 0)
            let mixed = try await harness.upload(label: "Clear", extra: ["--passphrase-file", secret])
            #expect(mixed.status == 2, "\(mixed.output)")
            #expect(mixed.output.contains("without encryption"), "\(mixed.output)")
        }
    }
}
