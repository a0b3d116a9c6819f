import AsyncHTTPClient
import Catalog
import Foundation
import NIOCore
import NIOHTTP1
import ObjectStore
import PipelineCore
import Testing
import TestSupport
import ArchiveStep
import SystemIO

/// `pipeline run`: the real program (uploader, transcoder, archiver and status server in one process) on the sample
/// disc that scripts/demo archives, against the real PostgreSQL and moto S3 or file:// buckets.
@Suite("pipeline run")
struct PipelineRunTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let sampleFiles = 10

    /// scripts/make-sample-disc into the harness's (empty) source directory.
    static func makeSampleDisc(_ harness: PipelineHarness, seconds: Int = 2) async throws {
        let made = try await Subprocess.run(repositoryRoot + "/scripts/make-sample-disc", [harness.source.path, String(seconds)])
        try #require(made.status == 0, "\(made.output)")
    }

    static func run(_ harness: PipelineHarness, _ extra: [String] = [], environment: [String: String] = [:]) throws -> Subprocess.Running {
        try Program.start(
            "pipeline", ["run", harness.source.path, "--label", "Sample disc", "--meta", "year=2004", "--port", "0"] + extra,
            environment: harness.environment.merging(environment) { $1 })
    }

    /// Waits until the running program has printed `text` (or exited), at most `limit`.
    static func waitForOutput(_ running: Subprocess.Running, containing text: String, limit: Duration = .seconds(120)) async throws -> String {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let output = running.outputSoFar()
            if output.contains(text) { return output }
            if kill(running.processID, 0) != 0 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("no '\(text)' in the output within \(limit): \(running.outputSoFar())")
        throw CancellationError()
    }

    @Test("the sample disc on moto S3 ends with everything archived: videos transcoded, the duplicate stored once, staging empty, export written")
    func sampleDiscIsArchived() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try await Self.makeSampleDisc(harness)
            let result = try await Self.run(harness).wait()
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\"Sample disc\": everything archived — \(Self.sampleFiles) of \(Self.sampleFiles) files safely in the archive"), "\(result.output)")
            #expect(result.output.contains("status page: http://127.0.0.1:"))

            let rows = try await harness.rows()
            #expect(rows.count == Self.sampleFiles)
            #expect(rows.filter { $0.state == "archived" }.count == Self.sampleFiles - 1, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let duplicate = try #require(rows.first { $0.state == "duplicate" })
            let holder = try #require(rows.first { $0.id == duplicate.duplicateOf })
            #expect(holder.state == "archived" && holder.hash == duplicate.hash)
            #expect(Set([duplicate.path, holder.path]) == ["Photos/Copies/IMG_0001 (copy).JPG", "Photos/2004 Summer/IMG_0001.JPG"])
            // Both home videos were transcoded with the default profile (H.265), the DV capture to a fraction of its size.
            for path in ["Home videos/1998 Christmas.dv", "Home videos/2003 Holiday.vob"] {
                let video = try #require(rows.first { $0.path == path })
                #expect(video.kind == "video")
                let codec = try await harness.scalar(
                    "SELECT details->'transcode'->>'video_codec' FROM objectstoragefiles WHERE id = \(video.id)", as: String.self)
                #expect(codec == "hevc", "\(path)")
            }
            let dvStored = try await harness.scalar(
                "SELECT stored_size_bytes FROM objectstoragefiles WHERE path = 'Home videos/1998 Christmas.dv'", as: Int64.self)
            let dvRaw = try #require(rows.first { $0.path == "Home videos/1998 Christmas.dv" }).size
            #expect(try #require(dvStored) < dvRaw / 5)
            let metadata = try await harness.scalar("SELECT metadata->>'year' FROM sources WHERE label = 'Sample disc'", as: String.self)
            #expect(metadata == "2004")

            // Nothing is left in staging; the data is in DEEP_ARCHIVE and the export in STANDARD, listing every file.
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            let archiveKeys = try await PipelineHarness.allKeys(harness.archive)
            let dataKeys = archiveKeys.filter { !$0.hasPrefix("catalog/") && !$0.hasSuffix(".json") }
            #expect(!dataKeys.isEmpty)
            for key in dataKeys {
                #expect(try await harness.archive.head(key)?.storageClassName == "DEEP_ARCHIVE", "\(key)")
            }
            let export = try #require(try await harness.archive.head(CatalogExport.key))
            #expect(export.storageClassName == "STANDARD")
            let gzipped = harness.work.path + "/export.jsonl.gz"
            try Data(try await harness.archive.getBytes(CatalogExport.key)).write(to: URL(fileURLWithPath: gzipped))
            let exported = try await Subprocess.run("/usr/bin/env", ["gzip", "-dc", gzipped])
            #expect(exported.status == 0)
            let exportedPaths = exported.output.split(separator: "\n").compactMap { line -> String? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["type"] as? String == "file" else { return nil }
                return object["path"] as? String
            }
            #expect(Set(exportedPaths) == Set(rows.map(\.path)), "the export should list every file")
        }
    }

    @Test("--encrypt-to: the sample disc archived encrypted, its videos kept as recorded (not transcoded); run again without it: refused")
    func encryptedSampleDisc() async throws {
        try await PipelineHarness.with(.file) { harness in
            try await Self.makeSampleDisc(harness)
            let keyPath = harness.work.path + "/key.txt"
            #expect(try await Subprocess.run("/usr/bin/age-keygen", ["-o", keyPath]).status == 0)
            let key = try String(contentsOfFile: keyPath, encoding: .utf8)
            let recipient = try #require(key.split(separator: "\n").first { $0.hasPrefix("# public key: ") }).dropFirst("# public key: ".count)
            let result = try await Self.run(harness, ["--encrypt-to", String(recipient)]).wait()
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("everything archived"), "\(result.output)")
            let rows = try await harness.rows()
            #expect(rows.count == Self.sampleFiles && rows.allSatisfy { $0.kind != "video" })
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE details->>'video_not_transcoded' = 'encrypted'", as: Int64.self) == 2)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE details ? 'transcode'", as: Int64.self) == 0)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)

            let again = try await Self.run(harness).wait()
            #expect(again.status == 2, "\(again.output)")
            #expect(again.output.contains("is encrypted"), "\(again.output)")
        }
    }

    @Test("--serve keeps the status page up with the final numbers until Ctrl-C, then exits 0")
    func serveKeepsThePageUp() async throws {
        try await PipelineHarness.with(.file) { harness in
            try await Self.makeSampleDisc(harness, seconds: 1)
            let running = try Self.run(harness, ["--serve", "--profile", "h264"])
            let output = try await Self.waitForOutput(running, containing: "the status page stays up")
            let url = try #require(output.split(separator: "\n").first { $0.hasPrefix("status page: ") }).dropFirst("status page: ".count)

            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + "api/status"), timeout: .seconds(30))
            #expect(response.status.code == 200)
            let body = try await response.body.collect(upTo: 1 << 20)
            let status = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            #expect(status["files_total"] as? Int == Self.sampleFiles)
            let byState = try #require(status["files_by_state"] as? [String: Any])
            #expect(byState["archived"] as? Int == Self.sampleFiles - 1)
            #expect(byState["duplicate"] as? Int == 1)
            let sources = try #require(status["sources"] as? [[String: Any]])
            #expect(sources.first?["label"] as? String == "Sample disc")
            #expect(sources.first?["complete"] as? Bool == true)

            running.signal(SIGINT)
            let result = try await running.wait()
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("everything archived"))
        }
    }

    @Test("Ctrl-C while a large file is being archived exits 130, hands the file back, and the same command then finishes")
    func interruptedRunResumes() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let large = PipelineHarness.bytes(count: 17 << 20, seed: 11)
            try harness.write("drive/backup.tar", large)
            try harness.write("drive/readme.txt", "what is on this drive\n")
            // The archive bucket never answers for files stored alone, so the interrupt lands mid-archive.
            let proxy = try await FaultProxy()
            defer { proxy.stop() }
            try await proxy.inject([.init("any", "hang", pathContains: "-archive/archive/files/")])
            let throughProxy = ["AWS_ENDPOINT_URL_S3": proxy.endpoint]
            let running = try Self.run(harness, ["--shutdown-grace-seconds", "1"], environment: throughProxy)
            _ = try await Self.waitForOutput(running, containing: "upload finished")
            let deadline = ContinuousClock.now + .seconds(60)
            while try await harness.scalar("SELECT state FROM objectstoragefiles WHERE path = 'drive/backup.tar'", as: String.self) != "archiving",
                  ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            running.signal(SIGINT)
            let interrupted = try await running.wait()
            #expect(interrupted.status == 130, "\(interrupted.output)")
            #expect(interrupted.output.contains("interrupted while waiting for the workers"), "\(interrupted.output)")
            let handedBack = try await harness.rows().first { $0.path == "drive/backup.tar" }
            #expect(handedBack?.state == "staged", "\(handedBack.map { ($0.state, $0.error) } ?? ("-", nil))")
            let attempts = try await harness.scalar("SELECT attempts FROM objectstoragefiles WHERE path = 'drive/backup.tar'", as: Int.self)
            #expect(attempts == 0, "an attempt cut short by shutdown is not counted")

            #expect(try await proxy.injected().keys.contains { $0.hasSuffix(" hang") }, "the archive upload was held")
            try await proxy.inject([])
            let rerun = try await Self.run(harness, environment: throughProxy).wait()
            #expect(rerun.status == 0, "\(rerun.output)")
            #expect(rerun.output.contains("everything archived — 2 of 2 files"), "\(rerun.output)")
            let rows = try await harness.rows()
            #expect(rows.count == 2 && rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state) })")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            // The large file is stored exactly once, byte for byte.
            let key = try #require(rows.first { $0.path == "drive/backup.tar" }?.storageKey)
            _ = try await harness.archive.requestRestore(key, days: 1, tier: .bulk)
            #expect(try await harness.archive.getBytes(key, limit: 64 << 20) == large)
        }
    }

    @Test("a disc the upload could not read completely: every file found is archived, yet the summary says NOT everything archived and lists the paths, exit 1",
          .enabled(if: FaultyFileSystem.isAvailable, "needs /dev/fuse"))
    func incompleteWalkIsNotArchived() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("readme.txt", "fine\n")
            try harness.write("VIDEO_TS/VTS_01_1.txt", "behind a directory that cannot be opened\n")
            try harness.write("extras/menu.txt", "cannot be inspected\n")
            let faults = FaultyFileSystem.Faults(opendir: ["/VIDEO_TS"], getattr: ["/extras/menu.txt"])
            try await FaultyFileSystem.with(mirroring: harness.source.path, faults: faults) { disc in
                let result = try await Program.run(
                    "pipeline", ["run", disc.mountPoint, "--label", "Scratched disc", "--port", "0"], environment: harness.environment)
                #expect(result.status == 1, "\(result.output)")
                #expect(result.output.contains(
                    "\"Scratched disc\": NOT everything archived (the upload could not read 2 paths of the source (files may be missing)) — 1 of 1 files safely in the archive"),
                    "\(result.output)")
                #expect(result.output.contains("NOT READ (2 paths"), "\(result.output)")
                #expect(result.output.contains("  VIDEO_TS: directory not readable: Input/output error"))
                #expect(result.output.contains("  extras/menu.txt: cannot inspect: Input/output error"))
                #expect(!result.output.contains("everything archived —"), "never the all-clear")
            }
            #expect(try await harness.rows().map(\.state) == ["archived"])
        }
    }

    @Test("--spool with --spool-limit: the source is read into the spool (the disc may be ejected), this run's own sender moves it on to staging and so frees room for the rest; everything archived, nothing left in spool or staging")
    func throughTheSpool() async throws {
        try await PipelineHarness.with(.file) { harness in
            var hashes: [String: String] = [:]
            for index in 0..<6 {
                let bytes = PipelineHarness.bytes(count: 600_000, seed: UInt64(100 + index))
                try harness.write("docs/\(index).bin", bytes)
                hashes["docs/\(index).bin"] = PipelineHarness.sha256(bytes)
            }
            // 3.6 MB through a spool of 2 MB: the read can only finish if the sender empties the spool meanwhile.
            let spool = harness.work.path + "/spool"
            let result = try await Program.run(
                "pipeline", ["run", harness.source.path, "--label", "Spooled disc", "--port", "0", "--spool", spool, "--spool-limit", "2M"],
                environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("through the spool \(spool)"), "\(result.output)")
            #expect(result.output.contains("spool full ("), "reading waited for room: \(result.output)")
            #expect(result.output.contains("Spooled disc is read; you may eject it. Its files wait in \(spool)"), "\(result.output)")
            #expect(result.output.contains("\"Spooled disc\": everything archived — 6 of 6 files safely in the archive"), "\(result.output)")
            let rows = try await harness.rows()
            #expect(rows.count == 6 && rows.allSatisfy { $0.state == "archived" && $0.hash == hashes[$0.path] }, "\(rows.map { ($0.path, $0.state) })")
            // The files went through the spool: it is registered, its sender spoke, and it is empty again.
            #expect(FileManager.default.fileExists(atPath: spool + "/.personal-backup-spool"))
            #expect(try await harness.scalar("SELECT count(*) FROM spools WHERE sender_state IS NOT NULL", as: Int64.self) == 1)
            let left = FileManager.default.enumerator(atPath: spool + "/sources")?.allObjects.compactMap { $0 as? String }.filter {
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: spool + "/sources/" + $0, isDirectory: &isDirectory) && !isDirectory.boolValue
            } ?? []
            #expect(left.isEmpty, "\(left)")
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
        }
    }

    @Test("a path that is neither a directory nor an ISO image is refused in one line with exit code 2")
    func refusesABadPath() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("notes.txt", "not a disc\n")
            let result = try await Program.run(
                "pipeline", ["run", harness.source.path + "/notes.txt", "--label", "x"], environment: harness.environment)
            #expect(result.status == 2, "\(result.output)")
            #expect(result.output.contains("notes.txt: neither a directory nor an ISO image"), "\(result.output)")
            // Refused before anything was touched: not even the catalog's tables were created.
            let tables = try await harness.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'objectstoragefiles'", as: Int64.self)
            #expect(tables == 0)
        }
    }

    @Test("pipeline run --owner: an unknown user stops it before anything is read; a known one owns the source it archives")
    func owner() async throws {
        try await PipelineHarness.with(.file) { harness in
            try harness.write("notes.txt", "a family letter\n")
            let unknown = try await Self.run(harness, ["--owner", "mallory"]).wait()
            #expect(unknown.status == 2 && unknown.output.contains("--owner mallory: no such user"), "\(unknown.output)")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles", as: Int64.self) == 0)
            for name in ["alice", "bob"] {
                let added = try await Program.run("uploader", ["users", "add", name], standardInput: "correct horse battery", environment: harness.environment)
                #expect(added.status == 0, "\(added.output)")
            }
            let result = try await Self.run(harness, ["--owner", "bob"]).wait()
            #expect(result.status == 0, "\(result.output)")
            #expect(try await harness.scalar("SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'Sample disc'", as: String.self) == "bob")
            #expect(try await harness.sourceState("Sample disc") == "archived")
        }
    }
}
