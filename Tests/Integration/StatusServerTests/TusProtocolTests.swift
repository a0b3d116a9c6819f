import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PipelineCore
import StatusServer
import SystemIO
import Testing
import TestSupport

/// tus 1.0.0 on the real status server (a loopback socket), with a real catalog and real staging: what lands in the
/// catalog is what `uploader upload` puts there, refusals are one line, another member's upload is 404, and an
/// acknowledged offset survives a restart (and bytes past it, or missing below it, are noticed).
@Suite("browser uploads: the tus protocol")
struct TusProtocolTests {
    @Test("chunks in, row staged as the uploader would stage it: same hash, versions, dedupe with `uploader upload`, source finished")
    func storedLikeTheUploader() async throws {
        try await withUploadFixture(.file) { fixture in
            let content = PipelineHarness.bytes(count: 3 * 1024 * 1024 + 123, seed: 21)
            try await fixture.withServer { base async throws in
                let options = try await request(base + "/api/uploads", method: .OPTIONS)
                #expect(options.status == 204)
                #expect(options.headers["Tus-Version"].first == "1.0.0")
                #expect(options.headers["Tus-Extension"].first == "creation,termination,expiration")
                #expect(options.headers["Tus-Max-Size"].first == String(512 << 20))

                let metadata = tusMetadata(["source": "Ann's laptop", "path": "docs/report é.bin", "notes": "from the browser", "modified": "1700000000123"])
                let location = try await createUpload(base, auth: fixture.annAuth, length: content.count, metadata: metadata)
                #expect(location.hasPrefix("/api/uploads/") && location.count == "/api/uploads/".count + 32)
                let head = try await request(base + location, method: .HEAD, headers: [fixture.annAuth, tusVersion])
                #expect(head.status == 200)
                #expect(head.headers["Upload-Offset"].first == "0" && head.headers["Upload-Length"].first == String(content.count))
                #expect(head.headers["Upload-Metadata"].first == metadata, "HEAD echoes the metadata")
                #expect(head.headers["Cache-Control"].first == "no-store" && head.headers["Tus-Resumable"].first == "1.0.0")

                // Uneven chunks, each acknowledged with the new offset.
                var offset = 0
                for size in [1, 1024 * 1024 - 1, 1_500_000, content.count] {
                    let end = min(content.count, offset + size)
                    let patched = try await patchUpload(base, location, auth: fixture.annAuth, offset: offset, bytes: content[offset..<end])
                    #expect(patched.status == 204, "\(patched.body)")
                    #expect(patched.headers["Upload-Offset"].first == String(end))
                    offset = end
                    if offset == content.count { break }
                    #expect(fixture.partialSize(String(location.dropFirst("/api/uploads/".count))) == Int64(offset), "acknowledged bytes are on disk")
                }
                let stored = try await waitUntilStored(base, location, auth: fixture.annAuth)
                #expect(stored["outcome"] as? String == "staged")
                let fileID = try #require(int64(stored["file_id"]))
                let row = try #require(try await fixture.harness.rows().first { $0.id == fileID })
                #expect(row.path == "docs/report é.bin" && row.state == "staged" && row.version == 1)
                #expect(row.hash == PipelineHarness.sha256(content) && row.size == Int64(content.count))
                #expect(try await scalar(fixture.client, "SELECT (extract(epoch FROM modified_at) * 1000)::bigint FROM objectstoragefiles WHERE id = \(fileID)", as: Int64.self) == 1_700_000_000_123)
                #expect(try await scalar(fixture.client, "SELECT note FROM sources WHERE label = 'Ann''s laptop'", as: String.self) == "from the browser")
                #expect(try await scalar(fixture.client, "SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = 'Ann''s laptop'", as: String.self) == "ann")
                #expect(try await scalar(fixture.client, "SELECT finished_at IS NOT NULL FROM sources WHERE label = 'Ann''s laptop'", as: Bool.self),
                        "the browser run ended with its last upload")
                #expect(try await scalar(fixture.client, "SELECT count(*) FROM snapshots WHERE finished_at IS NOT NULL", as: Int64.self) == 1)
                let download = try await request(base + "/files/\(fileID)/download", headers: [fixture.annAuth])
                #expect(download.status == 200 && download.bytes == content, "the staged bytes are the uploaded ones")
                #expect(fixture.partialSize(String(location.dropFirst("/api/uploads/".count))) == nil, "the partial file is gone once stored")

                // The same path with other bytes: version 2. The same bytes at another path: a duplicate, not stored twice.
                var changed = content
                changed[10] ^= 0xFF
                let second = try await createUpload(
                    base, auth: fixture.annAuth, length: changed.count, metadata: tusMetadata(["source": "Ann's laptop", "path": "docs/report é.bin"]))
                #expect(try await patchUpload(base, second, auth: fixture.annAuth, offset: 0, bytes: changed[...]).status == 204)
                let third = try await createUpload(
                    base, auth: fixture.annAuth, length: content.count, metadata: tusMetadata(["source": "Ann's laptop", "filename": "copy.bin"]))
                #expect(try await patchUpload(base, third, auth: fixture.annAuth, offset: 0, bytes: content[...]).status == 204)
                #expect(try await waitUntilStored(base, second, auth: fixture.annAuth)["outcome"] as? String == "staged")
                #expect(try await waitUntilStored(base, third, auth: fixture.annAuth)["outcome"] as? String == "duplicate")
                let rows = try await fixture.harness.rows()
                #expect(rows.filter { $0.path == "docs/report é.bin" }.map(\.version).sorted() == [1, 2])
                #expect(rows.first { $0.path == "copy.bin" }?.state == "duplicate")
                #expect(try await scalar(fixture.client, "SELECT count(*) FROM snapshots WHERE finished_at IS NOT NULL", as: Int64.self) == 2,
                        "the second batch was a second run")
            }
            // The uploader on the same bytes in a source of its own: its row is a duplicate of the browser's (the same
            // SHA-256 identity, the same dedupe).
            try fixture.harness.write("disc/report.bin", content)
            let cli = try await fixture.harness.upload(label: "Ann's DVD", path: fixture.harness.source.path + "/disc", extra: ["--owner", "ann"])
            #expect(cli.status == 0, "\(cli.output.suffix(1500))")
            let rows = try await fixture.harness.rows()
            let browserRow = try #require(rows.first { $0.path == "docs/report é.bin" && $0.version == 1 })
            let cliRow = try #require(rows.first { $0.path == "report.bin" })
            #expect(cliRow.state == "duplicate" && cliRow.hash == browserRow.hash)
        }
    }

    @Test("bad input: each refusal one line, nothing kept that was not acknowledged")
    func badInput() async throws {
        try await withUploadFixture(.file) { fixture in
            let content = PipelineHarness.bytes(count: 200_000, seed: 22)
            try await fixture.withServer(maxSize: 1_000_000) { base async throws in
                let metadata = tusMetadata(["source": "Ann's laptop", "path": "a.bin"])
                func create(_ headers: [(String, String)]) async throws -> HTTPResult {
                    try await request(base + "/api/uploads", method: .POST, headers: headers)
                }
                let missing = try await create([fixture.annAuth, ("Upload-Length", "10"), ("Upload-Metadata", metadata)])
                #expect(missing.status == 412 && missing.headers["Tus-Version"].first == "1.0.0" && isOneLine(missing.body), "\(missing.body)")
                #expect(missing.body.contains("Tus-Resumable"))
                let old = try await create([fixture.annAuth, ("Tus-Resumable", "0.2.2"), ("Upload-Length", "10"), ("Upload-Metadata", metadata)])
                #expect(old.status == 412 && isOneLine(old.body))
                #expect(try await scalar(fixture.client, "SELECT count(*) FROM browser_uploads", as: Int64.self) == 0, "a 412 request is not processed")

                let tooBig = try await create([fixture.annAuth, tusVersion, ("Upload-Length", "1000001"), ("Upload-Metadata", metadata)])
                #expect(tooBig.status == 413 && tooBig.body.contains("Tus-Max-Size") && isOneLine(tooBig.body))
                let noLength = try await create([fixture.annAuth, tusVersion, ("Upload-Metadata", metadata)])
                #expect(noLength.status == 400 && noLength.body.contains("Upload-Length") && isOneLine(noLength.body))
                let badBase64 = try await create([fixture.annAuth, tusVersion, ("Upload-Length", "10"), ("Upload-Metadata", "source !!!,path YS5iaW4=")])
                #expect(badBase64.status == 400 && isOneLine(badBase64.body))
                let noSource = try await create([fixture.annAuth, tusVersion, ("Upload-Length", "10"), ("Upload-Metadata", tusMetadata(["path": "a.bin"]))])
                #expect(noSource.status == 400 && noSource.body.contains("source"))
                for path in ["../etc/passwd", "a/../b", "/abs", "a//b", "a\u{0}b", String(repeating: "n", count: 1000), "./x"] {
                    let refused = try await create([
                        fixture.annAuth, tusVersion, ("Upload-Length", "10"), ("Upload-Metadata", tusMetadata(["source": "Ann's laptop", "path": path])),
                    ])
                    #expect(refused.status == 400 && isOneLine(refused.body), "path \(path.prefix(20)): \(refused.status) \(refused.body)")
                }
                #expect(try await scalar(fixture.client, "SELECT count(*) FROM browser_uploads", as: Int64.self) == 0)

                let location = try await createUpload(base, auth: fixture.annAuth, length: content.count, metadata: metadata)
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 0, bytes: content[0..<50_000]).status == 204)
                let wrongOffset = try await patchUpload(base, location, auth: fixture.annAuth, offset: 40_000, bytes: content[40_000..<60_000])
                #expect(wrongOffset.status == 409 && wrongOffset.body.contains("50000") && isOneLine(wrongOffset.body), "\(wrongOffset.body)")
                let pastEnd = try await patchUpload(base, location, auth: fixture.annAuth, offset: 50_000, bytes: ArraySlice(content[50_000...] + [1, 2, 3]))
                #expect(pastEnd.status == 413 && pastEnd.body.contains("Upload-Length") && isOneLine(pastEnd.body), "\(pastEnd.body)")
                // Larger than declared without a Content-Length (chunked): noticed while it streams, none of it kept.
                var streamed = HTTPClientRequest(url: base + location)
                streamed.method = .PATCH
                for (name, value) in [fixture.annAuth, tusVersion, ("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "50000")] {
                    streamed.headers.add(name: name, value: value)
                }
                let oversized = Array(content[50_000...]) + Array(repeating: 7, count: 70_000)
                streamed.body = .stream(AsyncStream<ByteBuffer> { continuation in
                    for start in stride(from: 0, to: oversized.count, by: 16_384) {
                        continuation.yield(ByteBuffer(bytes: oversized[start..<min(oversized.count, start + 16_384)]))
                    }
                    continuation.finish()
                }, length: .unknown)
                let chunked = try await testHTTPClient.execute(streamed, timeout: .seconds(30))
                let chunkedBody = String(buffer: try await chunked.body.collect(upTo: 1 << 16))
                #expect(chunked.status.code == 413 && isOneLine(chunkedBody), "\(chunked.status) \(chunkedBody)")
                let noType = try await request(
                    base + location, method: .PATCH, headers: [fixture.annAuth, tusVersion, ("Upload-Offset", "50000")], body: "x")
                #expect(noType.status == 415 && isOneLine(noType.body))
                let noVersion = try await request(
                    base + location, method: .PATCH,
                    headers: [fixture.annAuth, ("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "50000")], body: "x")
                #expect(noVersion.status == 412)
                #expect(try await headOffset(base, location, auth: fixture.annAuth) == 50_000, "no refused byte was kept")
                #expect(fixture.partialSize(String(location.dropFirst("/api/uploads/".count))) == 50_000)

                // A session without its CSRF token may not change anything; nobody at all gets 401.
                let session = try await logIn(base, "ann")
                let noCSRF = try await patchUpload(base, location, auth: ("Cookie", "backup_session=\(session)"), offset: 50_000, bytes: content[50_000...])
                #expect(noCSRF.status == 403 && noCSRF.body.contains("X-CSRF-Token") && isOneLine(noCSRF.body))
                #expect(try await patchUpload(base, location, auth: ("X-Nobody", "1"), offset: 50_000, bytes: content[50_000...]).status == 401)
                // Another member's source name cannot be taken.
                let benSource = try await create([
                    fixture.benAuth, tusVersion, ("Upload-Length", "10"), ("Upload-Metadata", tusMetadata(["source": "Ann's laptop", "path": "x"])),
                ])
                #expect(benSource.status == 409 && benSource.body.contains("taken") && isOneLine(benSource.body))
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 50_000, bytes: content[50_000...]).status == 204)
                let stored = try await waitUntilStored(base, location, auth: fixture.annAuth)
                let download = try await request(base + "/files/\(int64(stored["file_id"]) ?? -1)/download", headers: [fixture.annAuth])
                #expect(download.bytes == content)
            }
        }
    }

    @Test("another member's upload is 404 for HEAD, PATCH, DELETE and GET, like one that does not exist; it stays untouched")
    func isolation() async throws {
        try await withUploadFixture(.file) { fixture in
            let content = PipelineHarness.bytes(count: 100_000, seed: 23)
            try await fixture.withServer { base async throws in
                let location = try await createUpload(
                    base, auth: fixture.annAuth, length: content.count, metadata: tusMetadata(["source": "Ann only", "path": "secret.bin"]))
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 0, bytes: content[0..<30_000]).status == 204)
                let absent = "/api/uploads/" + String(repeating: "0123456789abcdef", count: 2)
                for target in [location, absent] {
                    let head = try await request(base + target, method: .HEAD, headers: [fixture.benAuth, tusVersion])
                    #expect(head.status == 404 && head.headers["Upload-Offset"].isEmpty, "\(target)")
                    let patch = try await patchUpload(base, target, auth: fixture.benAuth, offset: 30_000, bytes: content[30_000...])
                    let delete = try await request(base + target, method: .DELETE, headers: [fixture.benAuth, tusVersion])
                    let get = try await request(base + target, headers: [fixture.benAuth])
                    #expect(patch.status == 404 && delete.status == 404 && get.status == 404, "\(target)")
                    #expect(patch.body == "no such upload\n" && delete.body == patch.body, "the same answer for someone else's and nobody's")
                }
                let listed = try jsonObject(try await request(base + "/api/uploads", headers: [fixture.benAuth]).body)
                #expect((listed["uploads"] as? [Any])?.isEmpty == true, "ben's list holds none of ann's")
                #expect(try await headOffset(base, location, auth: fixture.annAuth) == 30_000, "ann's upload is as it was")
                let annList = try jsonObject(try await request(base + "/api/uploads", headers: [fixture.annAuth]).body)
                #expect((annList["uploads"] as? [[String: Any]])?.first?["path"] as? String == "secret.bin")
            }
        }
    }

    @Test("an acknowledged offset survives a restart; bytes past it are cut, bytes lost below it are asked for again; DELETE terminates")
    func restartAndTermination() async throws {
        try await withUploadFixture(.s3) { fixture in
            let content = PipelineHarness.bytes(count: 20 * 1024 * 1024 + 5, seed: 24)
            let location = try await fixture.withServer { base async throws in
                let location = try await createUpload(
                    base, auth: fixture.annAuth, length: content.count, metadata: tusMetadata(["source": "Big", "path": "big.bin"]))
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 0, bytes: content[0..<(8 << 20)]).status == 204)
                return location
            }
            let id = String(location.dropFirst("/api/uploads/".count))
            // As if the server had died after writing more bytes but before recording them.
            let handle = try #require(FileHandle(forWritingAtPath: fixture.partials + "/" + id + ".part"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(repeating: 0xEE, count: 4096))
            try handle.close()
            try await fixture.withServer { base async throws in
                #expect(try await headOffset(base, location, auth: fixture.annAuth) == 8 << 20, "a new server knows the acknowledged offset")
                #expect(fixture.partialSize(id) == 8 << 20, "the unacknowledged bytes were cut")
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 8 << 20, bytes: content[(8 << 20)..<(12 << 20)]).status == 204)
            }
            // As if the disk had lost the last bytes: the client is sent back for them.
            try FileManager.default.removeItem(atPath: fixture.partials + "/" + id + ".part")
            try Data(content[0..<(10 << 20)]).write(to: URL(fileURLWithPath: fixture.partials + "/" + id + ".part"))
            try await fixture.withServer { base async throws in
                #expect(try await headOffset(base, location, auth: fixture.annAuth) == 10 << 20)
                #expect(try await patchUpload(base, location, auth: fixture.annAuth, offset: 10 << 20, bytes: content[(10 << 20)...]).status == 204)
                let stored = try await waitUntilStored(base, location, auth: fixture.annAuth)
                let row = try #require(try await fixture.harness.rows().first { $0.id == int64(stored["file_id"]) })
                #expect(row.hash == PipelineHarness.sha256(content) && row.state == "staged")
                #expect(try await fixture.harness.stagedHash(row.storageKey ?? "") == PipelineHarness.sha256(content), "staging (moto) holds the bytes")

                // Termination: the upload and its partial file go, and the source's run ends with it.
                let doomed = try await createUpload(base, auth: fixture.annAuth, length: 1000, metadata: tusMetadata(["source": "Big", "path": "half.bin"]))
                #expect(try await patchUpload(base, doomed, auth: fixture.annAuth, offset: 0, bytes: content[0..<400]).status == 204)
                #expect(try await scalar(fixture.client, "SELECT finished_at IS NULL FROM sources WHERE label = 'Big'", as: Bool.self))
                let deleted = try await request(base + doomed, method: .DELETE, headers: [fixture.annAuth, tusVersion])
                #expect(deleted.status == 204 && deleted.headers["Tus-Resumable"].first == "1.0.0")
                #expect(try await request(base + doomed, method: .HEAD, headers: [fixture.annAuth, tusVersion]).status == 404)
                #expect(fixture.partialSize(String(doomed.dropFirst("/api/uploads/".count))) == nil)
                #expect(try await scalar(fixture.client, "SELECT finished_at IS NOT NULL FROM sources WHERE label = 'Big'", as: Bool.self))
                #expect(try await request(base + location, method: .DELETE, headers: [fixture.annAuth, tusVersion]).status == 204,
                        "a stored upload's record can be dropped; the file stays")
                #expect(try await fixture.harness.rows().contains { $0.id == row.id })
            }
        }
    }

    @Test("HEADs racing a client's PATCHes never cut what was acknowledged: every PATCH goes on from the last answer, every HEAD says at least what was acknowledged before it")
    func headsRacingPatches() async throws {
        try await withUploadFixture(.file) { fixture in
            let chunk = 16 * 1024
            let content = PipelineHarness.bytes(count: 160 * chunk + 77, seed: 26)
            try await fixture.withServer { base async throws in
                let location = try await createUpload(
                    base, auth: fixture.annAuth, length: content.count, metadata: tusMetadata(["source": "Race", "path": "race.bin"]))
                let acknowledged = AcknowledgedOffset()
                // A second tab (or a status poll) asking the offset as fast as it can while the chunks go in.
                let poller = Task {
                    var problems: [String] = []
                    while await !acknowledged.finished {
                        let before = await acknowledged.value
                        guard let answer = try await headOffset(base, location, auth: fixture.annAuth) else { continue }
                        if answer < before { problems.append("HEAD said \(answer) after \(before) was acknowledged") }
                    }
                    return problems
                }
                var offset = 0
                var refusals: [String] = []
                while offset < content.count {
                    let end = min(offset + chunk, content.count)
                    let answer = try await patchUpload(base, location, auth: fixture.annAuth, offset: offset, bytes: content[offset..<end])
                    if answer.status == 423 { continue }  // the HEAD held the upload for a moment: allowed, try again
                    guard answer.status == 204, let next = answer.headers["Upload-Offset"].first.flatMap(Int.init) else {
                        refusals.append("PATCH at \(offset): \(answer.status) \(answer.body)")
                        break
                    }
                    offset = next
                    await acknowledged.set(offset)
                }
                await acknowledged.finish()
                let problems = try await poller.value
                #expect(refusals.isEmpty, "\(refusals)")
                #expect(problems.isEmpty, "\(problems.prefix(5))")
                let stored = try await waitUntilStored(base, location, auth: fixture.annAuth)
                let row = try #require(try await fixture.harness.rows().first { $0.id == int64(stored["file_id"]) })
                #expect(row.hash == PipelineHarness.sha256(content))
            }
        }
    }

    @Test("expiration: Upload-Expires on creation, PATCH and HEAD; an upload idle past it is removed with its partial file, an active one is kept")
    func expiration() async throws {
        try await withUploadFixture(.file) { fixture in
            var configuration = try fixture.configuration()
            configuration.uploads.expireAfter = .seconds(20)
            try await withStatusServer(configuration, client: fixture.client, staging: fixture.harness.staging) { base async throws in
                let options = try await request(base + "/api/uploads", method: .OPTIONS)
                #expect(options.headers["Tus-Extension"].first?.split(separator: ",").contains("expiration") == true)
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                func expires(_ result: HTTPResult) -> Date? { result.headers["Upload-Expires"].first.flatMap { formatter.date(from: $0) } }

                let metadata = tusMetadata(["source": "Idle", "path": "idle.bin"])
                let created = try await request(base + "/api/uploads", method: .POST, headers: [
                    fixture.annAuth, tusVersion, ("Upload-Length", "1000"), ("Upload-Metadata", metadata)])
                #expect(created.status == 201)
                let idle = try #require(created.headers["Location"].first)
                let first = try #require(expires(created), "creation answers Upload-Expires: \(created.headers)")
                #expect(abs(first.timeIntervalSinceNow - 20) < 5, "\(first)")
                let patched = try await patchUpload(base, idle, auth: fixture.annAuth, offset: 0, bytes: ArraySlice(repeating: 7, count: 400))
                #expect(patched.status == 204 && expires(patched) != nil)
                #expect(expires(try await request(base + idle, method: .HEAD, headers: [fixture.annAuth, tusVersion])) != nil)
                let active = try await createUpload(base, auth: fixture.annAuth, length: 1000, metadata: tusMetadata(["source": "Idle", "path": "active.bin"]))

                // The first one gets nothing for longer than its expiry; the other keeps receiving.
                let idleID = String(idle.dropFirst("/api/uploads/".count))
                try await exec(fixture.client, "UPDATE browser_uploads SET updated_at = now() - interval '1 minute' WHERE id = '\(idleID)'")
                #expect(fixture.partialSize(idleID) == 400)
                let deadline = ContinuousClock.now + .seconds(30)
                while fixture.partialSize(idleID) != nil, ContinuousClock.now < deadline {
                    #expect(try await patchUpload(base, active, auth: fixture.annAuth, offset: try await headOffset(base, active, auth: fixture.annAuth) ?? 0,
                                                  bytes: ArraySlice(repeating: 1, count: 10)).status == 204)
                    try await Task.sleep(for: .milliseconds(500))
                }
                #expect(fixture.partialSize(idleID) == nil, "the idle upload's partial file was removed")
                #expect(try await request(base + idle, method: .HEAD, headers: [fixture.annAuth, tusVersion]).status == 404)
                #expect(try await patchUpload(base, idle, auth: fixture.annAuth, offset: 400, bytes: ArraySlice(repeating: 7, count: 600)).status == 404,
                        "an expired upload cannot be resumed")
                #expect(try await headOffset(base, active, auth: fixture.annAuth) != nil, "the active upload is kept")
            }
        }
    }
}

/// Logs in through the form and returns the session cookie's value.
func logIn(_ base: String, _ name: String) async throws -> String {
    let form = try await request(base + "/login")
    let csrfCookie = try #require(form.headers["Set-Cookie"].first { $0.hasPrefix("backup_login_csrf=") })
    let csrf = String(csrfCookie.dropFirst("backup_login_csrf=".count).prefix { $0 != ";" })
    let body = "csrf=\(csrf)&username=\(name)&password=" + (UploadFixture.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    let login = try await request(
        base + "/login", method: .POST, headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "backup_login_csrf=\(csrf)")], body: body)
    let session = try #require(login.headers["Set-Cookie"].first { $0.hasPrefix("backup_session=") }, "login: \(login.status) \(login.body.prefix(300))")
    return String(session.dropFirst("backup_session=".count).prefix { $0 != ";" })
}

/// The offset the client last had acknowledged, shared with the polling task.
private actor AcknowledgedOffset {
    private(set) var value = 0
    private(set) var finished = false
    func set(_ offset: Int) { value = offset }
    func finish() { finished = true }
}
