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

/// Share links on real objects in a file:// staging store: made from the page (CSRF) or with a token, opened
/// without logging in byte for byte, revoked, expired, refused for another member's file and for one that needs a
/// restore; only the token's hash is stored.
@Suite("family pages: share links")
struct FamilyShareTests {
    static let password = "a long enough password"

    @Test("a share link downloads the file without a login until revoked or expired; another member cannot share or revoke; an archived file cannot be shared")
    func shareLinks() async throws {
        let directory = try TemporaryDirectory("share")
        defer { directory.remove() }
        let staging = try await openObjectStore(
            url: try StorageURL(parsing: "file://\(directory.path)/staging"), settings: ObjectStoreSettings(environment: [:], logger: logger))
        let bytes = PipelineHarness.bytes(count: 2 * 1024 * 1024 + 5, seed: 21)
        _ = try await staging.put("staging/photo", bytes: bytes, options: PutOptions(storageClass: .standard))

        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            let alice = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            _ = try await accounts.addUser(name: "bob", role: .member, password: Secret(Self.password))
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "t").revealed
            let bobToken = try await accounts.issueToken(userName: "bob", tokenName: "t").revealed
            try await exec(client, """
                INSERT INTO sources (id, label, owner_id) VALUES (1, 'Photos', \(alice.id));
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key) VALUES
                  (10, 1, 'photo.jpg', 'photo.jpg', 'regular', \(bytes.count), '\(PipelineHarness.sha256(bytes))', 'staged', 'staging', 'staging/photo');
                INSERT INTO objectstoragefiles (id, source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at) VALUES
                  (12, 1, 'old.bin', 'old.bin', 'regular', 5, '\(String(repeating: "cd", count: 32))', 'archived', 'archive', 'k', 'archive/old', now());
                """)
            try await withStatusRoutes(try testConfiguration(), client: client, staging: staging) { base in
                // From the page: the form carries the session's CSRF token; the link is shown once.
                let cookie = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let page = try await request(base + "/files/10", headers: [("Cookie", cookie)])
                #expect(page.body.contains("id=\"share-form\""))
                let csrf = try #require(LoginForm.hiddenCSRF(in: page.body))
                let form = [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")]
                #expect(try await request(base + "/files/10/share", method: .POST, headers: form, body: "days=2&csrf=forged").status == 403)
                #expect(try await request(base + "/files/10/share", method: .POST, headers: form, body: "days=8&csrf=\(csrf)").status == 400)
                let made = try await request(base + "/files/10/share", method: .POST, headers: form, body: "days=2&csrf=\(csrf)")
                #expect(made.status == 200)
                let link = try #require(made.body.range(of: "id=\"share-link\" href=\"").map { String(made.body[$0.upperBound...].prefix { $0 != "\"" }) })
                #expect(link.hasPrefix("/share/shr_"))
                let token = String(link.dropFirst("/share/".count))
                #expect(try await scalar(client, "SELECT count(*) FROM file_shares WHERE token_hash = '\(token)'", as: Int64.self) == 0, "only the hash is kept")
                #expect(try await scalar(client, "SELECT (expires_at - created_at) = interval '2 days' FROM file_shares", as: Bool.self))

                // Anyone holding the link, no login: the exact bytes.
                let shared = try await request(base + link)
                #expect(shared.status == 200 && shared.bytes == bytes)
                #expect(try await request(base + ("/share/shr_" + String(repeating: "A", count: 43))).status == 404)

                // Bob can neither share nor revoke alice's file; an archived file needs a restore first.
                let asBob = [("Authorization", "Bearer " + bobToken)]
                #expect(try await request(base + "/files/10/share", method: .POST, headers: asBob).status == 404)
                let shareID = try await scalar(client, "SELECT id FROM file_shares", as: Int64.self)
                #expect(try await request(base + "/files/10/shares/\(shareID)/revoke", method: .POST, headers: asBob).status == 404)
                let asAlice = [("Authorization", "Bearer " + aliceToken)]
                #expect(try await request(base + "/files/12/share", method: .POST, headers: asAlice).status == 409)
                #expect(try await request(base + "/files/10/shares/\(shareID)/revoke", method: .POST, headers: [("Authorization", "Bearer " + aliceToken)]).status == 200)
                // A link of another file cannot be revoked through this one.
                #expect(try await request(base + "/files/12/shares/\(shareID)/revoke", method: .POST, headers: asAlice).status == 404)

                // Revoked: the link is dead; the page lists it no more.
                #expect(try await request(base + link).status == 404)
                #expect(!(try await request(base + "/files/10", headers: [("Cookie", cookie)])).body.contains("id=\"shares\""))

                // A token-made link, then expired in the catalog: dead too.
                let json = try jsonObject(try await request(base + "/files/10/share?days=1", method: .POST, headers: asAlice).body)
                let second = try #require(json["url"] as? String)
                #expect(try await request(base + second).bytes == bytes)
                #expect(try await request(base + "/files/10", headers: [("Cookie", cookie)]).body.contains("id=\"shares\""), "a live link is listed")
                try await exec(client, "UPDATE file_shares SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second'")
                #expect(try await request(base + second).status == 404)
                // A deleted file: its links are dead.
                let third = try #require(try jsonObject(try await request(base + "/files/10/share?days=1", method: .POST, headers: asAlice).body)["url"] as? String)
                #expect(try await request(base + third).status == 200)
                try await exec(client, "UPDATE objectstoragefiles SET deleted_at = now() WHERE id = 10")
                #expect(try await request(base + third).status == 404)
            }
        }
    }
}
