import Accounts
import AsyncHTTPClient
import Catalog
import Foundation
import NIOHTTP1
import ObjectStore
import PipelineCore
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// Restores from the browser on the real stack: the real uploader stores files in moto (SigV4 enforced), the real
/// archiver moves them to DEEP_ARCHIVE (a zstd bundle of compressible files and a large file alone), a member asks
/// for a folder and a file back, and the real archiver's housekeeping restores and caches them; the folder comes
/// down as a tar that GNU tar unpacks, every file compared by SHA-256; "uncache" deletes the copy at once, expiry
/// later; another member gets 404 everywhere.
@Suite("family pages: restores from the browser")
struct FamilyRestoreTests {
    static func compressible(_ seed: Int, lines: Int) -> [UInt8] {
        Array((0..<lines).map { "line \($0 % 17) of file \(seed): the same words again and again\n" }.joined().utf8)
    }

    @Test("moto: a folder restored (zstd bundle) comes down as a tar, byte for byte; a file alone comes down as itself; uncache and expiry delete the copies; another member gets 404")
    func restoreFolderAndFile() async throws {
        try await withUploadFixture(.s3) { fixture in
            let harness = fixture.harness
            var originals: [String: [UInt8]] = [
                "docs/a.txt": Self.compressible(1, lines: 300), "docs/b.txt": Self.compressible(2, lines: 500),
                "docs/sub/c é.txt": Self.compressible(3, lines: 40), "docs/empty.txt": [], "top.txt": Self.compressible(4, lines: 10),
                "video/big.bin": PipelineHarness.bytes(count: 700_000, seed: 9),
            ]
            originals["docs/copy-of-a.txt"] = originals["docs/a.txt"]
            // Two names one case-insensitive file system takes for one: the tar must not let one overwrite the other.
            originals["docs/Case.txt"] = Self.compressible(5, lines: 20)
            originals["docs/case.txt"] = Self.compressible(6, lines: 20)
            for (path, bytes) in originals { _ = try harness.write(path, bytes) }
            let upload = try await harness.upload(label: "Family", extra: ["--owner", "ann"])
            #expect(upload.status == 0, "\(upload.output)")
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"])
            #expect(archived.status == 0, "\(archived.output)")
            let rows = try await harness.rows()
            #expect(rows.allSatisfy { ["archived", "duplicate"].contains($0.state) }, "\(rows.map { ($0.path, $0.state) })")
            #expect(try await scalar(fixture.client, "SELECT count(*) FROM bundles WHERE compression = 'zstd' AND storage_class = 'DEEP_ARCHIVE'", as: Int64.self) >= 1)
            let aID = try #require(rows.first { $0.path == "docs/a.txt" }?.id)
            let bigID = try #require(rows.first { $0.path == "video/big.bin" }?.id)

            try await fixture.withServer { base in
                let ann = [fixture.annAuth], ben = [fixture.benAuth]
                let form = ("Content-Type", "application/x-www-form-urlencoded")
                #expect(try await request(base + "/files/\(aID)/download", headers: ann).status == 409, "archived: a restore first")

                // Bad requests get one clear line; another member's source does not exist for them.
                let badTier = try await request(base + "/restores", method: .POST, headers: ann + [form], body: "source=Family&dir=docs&tier=Expedited")
                #expect(badTier.status == 400 && isOneLine(badTier.body) && badTier.body.contains("Bulk or Standard"), "\(badTier.body)")
                #expect(try await request(base + "/restores", method: .POST, headers: ann + [form], body: "source=Family&dir=docs&days=31").status == 400)
                #expect(try await request(base + "/restores", method: .POST, headers: ann + [form], body: "source=Family&dir=nowhere").status == 409)
                #expect(try await request(base + "/restores", method: .POST, headers: ben + [form], body: "source=Family&dir=docs").status == 404)
                #expect(try await request(base + "/restores", method: .POST, headers: ben + [form], body: "source=Family&file=\(aID)").status == 404)

                // The folder: asked for, then restored and cached by the real archiver.
                let made = try await request(base + "/restores", method: .POST, headers: ann + [form], body: "source=Family&dir=docs&tier=Bulk&days=2")
                #expect(made.status == 201, "\(made.body)")
                let folderID = try #require(try jsonObject(made.body)["id"] as? Int)
                let asked = try jsonObject(try await request(base + "/api/restores/\(folderID)", headers: ann).body)
                #expect(asked["state"] as? String == "restoring" && asked["tier"] as? String == "Bulk" && asked["files"] as? Int == 7, "\(asked)")
                let expected = try #require((asked["expected_ready_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
                #expect(expected > Date().addingTimeInterval(47 * 3600), "Bulk from Deep Archive: up to 48 hours, said \(expected)")
                #expect(asked["files_waiting"] as? Int == 7 && (asked["missing"] as? [Any])?.isEmpty == true,
                        "while restoring, files on their way are waiting, not missing: \(asked)")
                #expect(try await request(base + "/restores/\(folderID)/download", headers: ann).status == 409, "not ready yet")
                for path in ["/api/restores/\(folderID)", "/restores/\(folderID)/download"] {
                    let stranger = try await request(base + path, headers: ben)
                    #expect(stranger.status == 404 && stranger.body == #"{"error":"not found"}"# + "\n", "\(path) for another member")
                }
                #expect(try await request(base + "/restores/\(folderID)/uncache", method: .POST, headers: ben).status == 404)

                let restoring = try await harness.archiveOnce()
                #expect(restoring.status == 0, "\(restoring.output)")
                let ready = try jsonObject(try await request(base + "/api/restores/\(folderID)", headers: ann).body)
                #expect(ready["state"] as? String == "ready", "\(ready)\n\(restoring.output.suffix(2000))")
                #expect(ready["objects"] as? Int == ready["objects_cached"] as? Int)
                #expect(try await scalar(fixture.client, "SELECT count(*) FROM restore_requests WHERE requested_for LIKE 'browser restore %'", as: Int64.self) >= 1,
                        "the Deep Archive restore was asked for and recorded")

                // The tar: GNU tar unpacks it; every file is there with its bytes, the duplicate included.
                let tar = try await download(base + "/restores/\(folderID)/download", auth: fixture.annAuth)
                #expect(tar.status == 200 && tar.contentType == "application/x-tar")
                let unpacked = harness.work.path + "/unpacked"
                try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
                try Data(tar.bytes).write(to: URL(fileURLWithPath: unpacked + "/all.tar"))
                let untar = try await runPolling("/usr/bin/tar", ["-xf", unpacked + "/all.tar", "-C", unpacked])
                #expect(untar.status == 0, "\(untar.output)")
                for (path, bytes) in originals where path.hasPrefix("docs/") && !path.lowercased().hasSuffix("case.txt") {
                    let got = FileManager.default.contents(atPath: unpacked + "/Family/" + path).map { Array($0) }
                    #expect(got == bytes, "\(path) in the tar")
                }
                // The second of the two colliding names (whichever the catalog lists second) got " (2)".
                let listing = try await runPolling("/usr/bin/tar", ["-tf", unpacked + "/all.tar"])
                let cased = listing.output.split(separator: "\n").map(String.init).filter { $0.lowercased().contains("/docs/case") }
                #expect(cased.count == 2 && cased.contains { $0.hasSuffix("(2).txt") }, "\(listing.output)")
                let casedBytes = Set(cased.compactMap { FileManager.default.contents(atPath: unpacked + "/" + $0) })
                #expect(casedBytes == Set([Data(originals["docs/Case.txt"]!), Data(originals["docs/case.txt"]!)]), "both kept, neither overwritten")
                #expect(!FileManager.default.fileExists(atPath: unpacked + "/Family/top.txt"), "only the folder asked for")
                #expect(!FileManager.default.fileExists(atPath: unpacked + "/Family/MISSING-FILES.txt"))
                // One file of it, read from the cached copy by its range.
                let one = try await download(base + "/files/\(aID)/download", auth: fixture.annAuth)
                #expect(one.status == 200 && one.bytes == originals["docs/a.txt"]!)

                // A file stored alone, asked for from the page (session and CSRF).
                let cookie = "backup_session=" + (try await logIn(base, "ann"))
                let page = try await request(base + "/files/\(bigID)", headers: [("Cookie", cookie)])
                #expect(page.body.contains("id=\"restore-form\""), "an archived file offers a restore")
                let csrf = try #require(LoginForm.hiddenCSRF(in: page.body))
                #expect(try await request(base + "/restores", method: .POST, headers: [("Cookie", cookie), form],
                                          body: "source=Family&file=\(bigID)&csrf=forged").status == 403)
                let fromPage = try await request(base + "/restores", method: .POST, headers: [("Cookie", cookie), form],
                                                 body: "source=Family&file=\(bigID)&tier=Standard&days=1&csrf=\(csrf)")
                #expect(fromPage.status == 303)
                let fileRestore = try #require(fromPage.headers["Location"].first.flatMap { Int($0.split(separator: "/").last ?? "") })
                let pending = try await request(base + "/restores/\(fileRestore)", headers: [("Cookie", cookie)])
                #expect(pending.body.contains("Standard: ready within about 12 hours") && pending.body.contains("Being restored"), "\(pending.body)")
                #expect(try await harness.archiveOnce().status == 0)
                let file = try await download(base + "/restores/\(fileRestore)/download", auth: fixture.annAuth)
                #expect(file.status == 200 && file.bytes == originals["video/big.bin"]!)
                let listed = try await request(base + "/restores", headers: [("Cookie", cookie)])
                #expect(listed.body.contains("/restores/\(folderID)") && listed.body.contains("/restores/\(fileRestore)"))

                // Uncache: the copies are gone from staging at once; the downloads need a restore again.
                let uncached = try await request(base + "/restores/\(folderID)/uncache", method: .POST, headers: ann)
                #expect(uncached.status == 200, "\(uncached.body)")
                #expect(try await PipelineHarness.allKeys(harness.staging, prefix: "cache/restore-\(folderID)/").isEmpty)
                #expect(try await request(base + "/restores/\(folderID)/download", headers: ann).status == 409)
                #expect(try await request(base + "/files/\(aID)/download", headers: ann).status == 409)
                #expect(try jsonObject(try await request(base + "/api/restores/\(folderID)", headers: ann).body)["state"] as? String == "uncached")

                // Expiry: the archiver deletes the copy once its days are over.
                #expect(try await PipelineHarness.allKeys(harness.staging, prefix: "cache/restore-\(fileRestore)/").count == 1)
                try await exec(fixture.client, "UPDATE browser_restores SET cached_until = now() - interval '1 second' WHERE id = \(fileRestore)")
                #expect(try await request(base + "/restores/\(fileRestore)/download", headers: ann).status == 409, "past its days: not served")
                #expect(try await harness.archiveOnce().status == 0)
                #expect(try jsonObject(try await request(base + "/api/restores/\(fileRestore)", headers: ann).body)["state"] as? String == "expired")
                #expect(try await PipelineHarness.allKeys(harness.staging, prefix: "cache/").isEmpty, "every cached copy is gone")
            }
        }
    }

    @Test("uncache racing the archiver's record of a copy: every recorded copy is handed to the uncache, or its recorder is told to remove it")
    func uncacheRace() async throws {
        try await withUploadFixture(.file) { fixture in
            let family = FamilyCatalog(client: fixture.client, logger: logger)
            let workers = BrowserRestoreCatalog(client: fixture.client, logger: logger)
            try await exec(fixture.client, """
                INSERT INTO sources (id, label, owner_id) VALUES (1, 'Race', \(fixture.ann.id));
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, archive_key, archived_at, stored_size_bytes, stored_hash)
                VALUES (1, 1, 'x', 'x', 'regular', 1, '\(String(repeating: "ab", count: 32))', 'archived', 'archive', 'files/x', now(), 1, '\(String(repeating: "ab", count: 32))')
                """)
            var random = SplitMix(seed: 25)
            for round in 0..<40 {
                let outcome = try await family.requestRestore(
                    sourceLabel: "Race", fileID: nil, directory: "", tier: "Bulk", days: 1, expectedReady: { _ in .seconds(60) }, visibleTo: fixture.ann)
                guard case .created(let id)? = outcome else { Issue.record("round \(round): \(String(describing: outcome))"); return }
                let object = try #require(try await workers.objectsToCache().first { $0.restoreID == id })
                let delay = Int(random.next() % 4)
                async let recorded = { () async throws -> Bool in
                    try await Task.sleep(for: .milliseconds(delay))
                    return try await workers.recordCached(object)
                }()
                async let handed = family.uncache(restoreID: id, visibleTo: fixture.ann)
                let (wasRecorded, keys) = try await (recorded, handed)
                let stillRecorded = try await scalar(
                    fixture.client, "SELECT count(*) FROM browser_restore_objects WHERE restore_id = \(id) AND cache_key IS NOT NULL", as: Int64.self)
                if wasRecorded {
                    #expect(keys?.contains(object.cacheKey) == true, "round \(round): a copy recorded before the uncache must be handed to it")
                } else {
                    #expect(stillRecorded == 0, "round \(round): a refused record leaves no key")
                }
            }
        }
    }

    struct Downloaded {
        let status: Int
        let contentType: String?
        let bytes: [UInt8]
    }

    func download(_ url: String, auth: (String, String)) async throws -> Downloaded {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: auth.0, value: auth.1)
        let response = try await testHTTPClient.execute(request, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Downloaded(status: Int(response.status.code), contentType: response.headers["Content-Type"].first, bytes: Array(buffer: body))
    }
}
