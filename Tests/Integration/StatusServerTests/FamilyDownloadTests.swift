import Accounts
import Catalog
import Foundation
import NIOHTTP1
import ObjectStore
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// `GET /files/{id}/download` on real objects in a file:// staging store: the owner gets the exact bytes, another
/// member 404, a file that needs a restore 409, and bytes that do not match the catalog never arrive complete.
@Suite("family accounts: downloads")
struct FamilyDownloadTests {
    static let password = "a long enough password"

    @Test("staged files stream byte for byte to their owner (a duplicate through its holder); others get 404, archived ones 409, tampered ones are cut")
    func download() async throws {
        let directory = try TemporaryDirectory("dl")
        defer { directory.remove() }
        let staging = try await openObjectStore(
            url: try StorageURL(parsing: "file://\(directory.path)/staging"), settings: ObjectStoreSettings(environment: [:], logger: logger))
        // Several MiB: many chunks through the stream.
        let big = PipelineHarness.bytes(count: 5 * 1024 * 1024 + 17, seed: 7)
        _ = try await staging.put("staging/big", bytes: big, options: PutOptions(storageClass: .standard))
        let tampered = PipelineHarness.bytes(count: 300_000, seed: 8)
        var altered = tampered
        altered[150_000] ^= 0xFF
        _ = try await staging.put("staging/tampered", bytes: altered, options: PutOptions(storageClass: .standard))

        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            let alice = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            _ = try await accounts.addUser(name: "bob", role: .member, password: Secret(Self.password))
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "t")
            let bobToken = try await accounts.issueToken(userName: "bob", tokenName: "t")
            try await exec(client, """
                INSERT INTO sources (id, label, owner_id) VALUES (1, 'Photos', \(alice.id)), (2, 'Photos again', \(alice.id));
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key) VALUES
                  (10, 1, 'big.bin', 'dir/big file é.bin', 'regular', \(big.count), '\(PipelineHarness.sha256(big))', 'staged', 'staging', 'staging/big'),
                  (11, 1, 'tampered.bin', 'tampered.bin', 'regular', \(tampered.count), '\(PipelineHarness.sha256(tampered))', 'staged', 'staging', 'staging/tampered');
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at) VALUES
                  (12, 1, 'old.bin', 'old.bin', 'regular', 5, '\(String(repeating: "cd", count: 32))', 'archived', 'archive', 'k', 'archive/old', now());
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, duplicate_of) VALUES
                  (13, 2, 'copy.bin', 'copy.bin', 'regular', \(big.count), '\(PipelineHarness.sha256(big))', 'duplicate', 'staging', 'staging/big', 10)
                """)
            try await withStatusRoutes(try testConfiguration(), client: client, staging: staging) { base in
                let owner = ("Authorization", "Bearer " + aliceToken.revealed)
                let files = try #require(try jsonObject(try await request(base + "/api/sources/Photos/files", headers: [owner]).body)["files"] as? [[String: Any]])
                let links = Dictionary(uniqueKeysWithValues: files.compactMap { file in int64(file["id"]).map { ($0, file["download"] as? String) } })
                #expect(links[10] == "/files/10/download" && links[11] == "/files/11/download")
                #expect(links[12] == .some(nil), "archived: null until restored")
                // Pages: one file at a time, following `next`, gives the same files once each; the last page has none.
                var paged: [Int64] = []
                var next: String? = "/api/sources/Photos/files?limit=1"
                while let url = next, paged.count < 10 {
                    let page = try jsonObject(try await request(base + url, headers: [owner]).body)
                    paged += (page["files"] as? [[String: Any]] ?? []).compactMap { int64($0["id"]) }
                    next = page["next"] as? String
                }
                #expect(paged == files.compactMap { int64($0["id"]) }.sorted(), "\(paged)")
                let badLimit = try await request(base + "/api/sources/Photos/files?limit=0", headers: [owner])
                #expect(badLimit.status == 400 && isOneLine(badLimit.body), "\(badLimit.body)")

                for id in [10, 13] {
                    let response = try await request(base + "/files/\(id)/download", headers: [owner])
                    #expect(response.status == 200)
                    #expect(response.headers["Content-Type"].first == "application/octet-stream")
                    #expect(response.headers["Content-Length"].first == String(big.count))
                    #expect(response.headers["Content-Disposition"].first?.contains("filename*=UTF-8''") == true)
                    #expect(response.bytes == big, "file \(id): the exact bytes")
                }
                #expect(try await request(base + "/files/12/download", headers: [owner]).status == 409)

                let other = ("Authorization", "Bearer " + bobToken.revealed)
                let missing = try await request(base + "/files/999999/download", headers: [other])
                #expect(missing.status == 404)
                for id in [10, 11, 12, 13] {
                    let response = try await request(base + "/files/\(id)/download", headers: [other])
                    #expect(response.status == 404 && response.body == missing.body, "bob on alice's file \(id)")
                }
                #expect(try await request(base + "/files/10/download").status == 401)
                #expect(try await request(base + "/files/abc/download", headers: [owner]).status == 404)
            }
            // Over a real socket, as a client sees it: the response to altered bytes ends short of its Content-Length
            // (the last chunk is held back until the hash is checked), so it is an error, never a complete file.
            try await withStatusServer(try testConfiguration(), client: client, staging: staging) { base in
                let owner = ("Authorization", "Bearer " + aliceToken.revealed)
                let good = try await request(base + "/files/10/download", headers: [owner])
                #expect(good.status == 200 && good.bytes == big, "the intact file arrives whole over the socket")
                do {
                    let cut = try await request(base + "/files/11/download", headers: [owner])
                    Issue.record("a download of altered bytes completed: \(cut.status), \(cut.bytes.count) of \(tampered.count) bytes")
                } catch {
                    // The connection was closed before the announced length: what every HTTP client reports as a failed download.
                }
            }
        }
    }
}
