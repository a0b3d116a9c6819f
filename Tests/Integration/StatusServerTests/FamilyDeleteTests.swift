import Accounts
import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// Deleting from the family pages: a request in ObjectStorageDeleteLog, "undo" until the archiver carries it out,
/// CSRF on the forms, another member's file or source 404, and undo racing the archiver never both undone and
/// deleted. Real PostgreSQL, the real router, the archiver's real delete processing (`DeleteRequests`).
@Suite("family pages: delete and undo")
struct FamilyDeleteTests {
    static let password = "a long enough password"

    @Test("delete and undo of a file (page forms with CSRF) and of a source (token); another member gets 404; history kept")
    func deleteAndUndo() async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            var ids: [String: Int64] = [:]
            for name in ["alice", "bob"] { ids[name] = try await accounts.addUser(name: name, role: .member, password: Secret(Self.password)).id }
            let source = try await scalar(client, "INSERT INTO sources (label, owner_id, finished_at) VALUES ('Photos', \(ids["alice"]!), now()) RETURNING id", as: Int64.self)
            var inserted: [Int64] = []
            for index in 0..<3 {
                inserted.append(try await FamilyBrowseTests.insertFile(client, source: source, path: "p\(index).jpg", state: "staged"))
            }
            let files = inserted
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "t").revealed
            let bobToken = try await accounts.issueToken(userName: "bob", tokenName: "t").revealed
            @Sendable func logRows() async throws -> Int64 { try await scalar(client, "SELECT count(*) FROM objectstoragedeletelog", as: Int64.self) }

            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let cookie = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let page = try await request(base + "/files/\(files[0])", headers: [("Cookie", cookie)])
                #expect(page.body.contains("action=\"/files/\(files[0])/delete\"") && page.body.contains("id=\"delete\""))
                let csrf = try #require(LoginForm.hiddenCSRF(in: page.body))
                let form = [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")]

                // Without the form's CSRF token: refused, nothing recorded. Bob: 404 with his token, nothing recorded.
                #expect(try await request(base + "/files/\(files[0])/delete", method: .POST, headers: form, body: "csrf=forged").status == 403)
                #expect(try await request(base + "/files/\(files[0])/delete", method: .POST, headers: [("Authorization", "Bearer " + bobToken)]).status == 404)
                #expect(try await request(base + "/sources/Photos/delete", method: .POST, headers: [("Authorization", "Bearer " + bobToken)]).status == 404)
                #expect(try await logRows() == 0)

                let deleted = try await request(base + "/files/\(files[0])/delete", method: .POST, headers: form, body: "csrf=\(csrf)")
                #expect(deleted.status == 303 && deleted.headers["Location"].first == "/files/\(files[0])")
                #expect(try await logRows() == 1)
                let pending = try await request(base + "/files/\(files[0])", headers: [("Cookie", cookie)])
                #expect(pending.body.contains("id=\"pending-delete\"") && pending.body.contains("action=\"/files/\(files[0])/undo-delete\""))
                let listing = try await request(base + "/sources/Photos", headers: [("Cookie", cookie)])
                #expect(listing.body.contains("1 file is to be deleted") && listing.body.contains("(to be deleted)"))
                // Asking twice makes no second request.
                _ = try await request(base + "/files/\(files[0])/delete", method: .POST, headers: form, body: "csrf=\(csrf)")
                #expect(try await logRows() == 1)

                let undone = try await request(base + "/files/\(files[0])/undo-delete", method: .POST, headers: form, body: "csrf=\(csrf)")
                #expect(undone.status == 303)
                #expect(try await scalar(client, "SELECT outcome FROM objectstoragedeletelog", as: String.self) == "undone by alice")
                // The archiver finds nothing due: the file stays.
                #expect(try await DeleteRequests(client: client, logger: logger).processDue(grace: .zero).isEmpty)
                #expect(try await scalar(client, "SELECT count(*) FROM objectstoragefiles WHERE deleted_at IS NULL", as: Int64.self) == 3)

                // The whole source with a token; the archiver carries it out; undo afterwards changes nothing.
                let token = [("Authorization", "Bearer " + aliceToken)]
                let all = try jsonObject(try await request(base + "/sources/Photos/delete", method: .POST, headers: token).body)
                #expect(int64(all["changed"]) == 3)
                #expect(int64(try jsonObject(try await request(base + "/sources/Photos/delete", method: .POST, headers: token).body)["changed"]) == 0)
                #expect(try await DeleteRequests(client: client, logger: logger).processDue(grace: .zero).count == 3)
                #expect(try await scalar(client, "SELECT count(*) FROM objectstoragefiles WHERE deleted_at IS NULL", as: Int64.self) == 0)
                #expect(try await request(base + "/files/\(files[1])", headers: token).status == 404, "a deleted file is gone from the pages")
                #expect(int64(try jsonObject(try await request(base + "/sources/Photos/undo-delete", method: .POST, headers: token).body)["changed"]) == 0)
                #expect(try await logRows() == 4, "the log keeps every request, the undone one included")
            }
        }
    }

    @Test("undo racing the archiver: every request ends either carried out or undone, never both, never neither", arguments: [UInt64.random(in: 0...UInt64.max)])
    func undoRacesTheArchiver(seed: UInt64) async throws {
        var random = SplitMix(seed: seed)
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            let alice = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            let source = try await scalar(client, "INSERT INTO sources (label, owner_id) VALUES ('Race', \(alice.id)) RETURNING id", as: Int64.self)
            var files: [Int64] = []
            for index in 0..<30 { files.append(try await FamilyBrowseTests.insertFile(client, source: source, path: "f\(index)", state: "staged")) }
            let family = FamilyCatalog(client: client, logger: logger)
            let user = try #require(try await accounts.user(apiToken: try await accounts.issueToken(userName: "alice", tokenName: "t")))
            for file in files { #expect(try await family.requestDelete(fileID: file, visibleTo: user) == 1) }
            let order = files.shuffled(using: &random)
            async let processed = DeleteRequests(client: client, logger: logger).processDue(grace: .zero, limit: 100)
            var undone = 0
            for file in order { undone += try await family.undoDelete(fileID: file, visibleTo: user) ?? 0 }
            let carriedOut = try await processed.count
            #expect(undone + carriedOut == files.count, "seed \(seed): \(undone) undone, \(carriedOut) carried out")
            for file in files {
                let deleted = try await scalar(client, "SELECT deleted_at IS NOT NULL FROM objectstoragefiles WHERE id = \(file)", as: Bool.self)
                let outcome = try await scalar(client, "SELECT coalesce(outcome, 'pending') FROM objectstoragedeletelog WHERE file_id = \(file)", as: String.self)
                #expect(deleted != (outcome == "undone by alice"), "seed \(seed): file \(file) deleted \(deleted), outcome \(outcome)")
                #expect(outcome != "pending", "seed \(seed)")
            }
        }
    }
}
