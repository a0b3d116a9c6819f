import Accounts
import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// The family pages for browsing: a source as a folder tree, a search in it, one file's details, and the "safe to
/// destroy the original?" verdict as the last audit gave it. Real PostgreSQL, the real router.
@Suite("family pages: folder tree, search, file details, the verdict")
struct FamilyBrowseTests {
    static let password = "a long enough password"
    static let hash = String(repeating: "ab", count: 32)

    static func insertFile(_ client: PostgresClient, source: Int64, path: String, state: String, version: Int = 1, size: Int = 100,
                           duplicateOf: Int64? = nil, details: String = "{}") async throws -> Int64 {
        let archived = state == "archived" ? "'files/\(UUID().uuidString)', now()" : "NULL, NULL"
        return try await scalar(client, """
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, version, duplicate_of, details, archive_key, archived_at, storage)
            VALUES (\(source), '\((path as NSString).lastPathComponent.replacingOccurrences(of: "'", with: "''"))', '\(path.replacingOccurrences(of: "'", with: "''"))',
                    'regular', \(size), '\(hash)', '\(state)', \(version), \(duplicateOf.map(String.init) ?? "NULL"), '\(details)'::jsonb, \(archived),
                    \(state == "archived" ? "'archive'" : state == "staged" ? "'staging'" : "NULL"))
            RETURNING id
            """, as: Int64.self)
    }

    @Test("a folder tree by ?dir=, a search with literal % and _, file details linking versions, transcode and duplicate (another's source never named), the verdict from catalog to audit")
    func browse() async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            var ids: [String: Int64] = [:]
            for (name, role) in [("alice", AccountRole.member), ("bob", .member), ("root", .admin)] {
                ids[name] = try await accounts.addUser(name: name, role: role, password: Secret(Self.password)).id
            }
            let label = "Holiday 100%/é"
            let alice = try await scalar(client, "INSERT INTO sources (label, owner_id) VALUES ('\(label)', \(ids["alice"]!)) RETURNING id", as: Int64.self)
            let bob = try await scalar(client, "INSERT INTO sources (label, owner_id, finished_at) VALUES ('Bob', \(ids["bob"]!), now()) RETURNING id", as: Int64.self)
            let bobsFile = try await Self.insertFile(client, source: bob, path: "shared.jpg", state: "archived")
            let one = try await Self.insertFile(client, source: alice, path: "a/b/one.txt", state: "archived", size: 1_000)
            _ = try await Self.insertFile(client, source: alice, path: "a/b/c/three_x.txt", state: "archived", size: 3_000)
            _ = try await Self.insertFile(client, source: alice, path: "a/two.txt", state: "staged")
            _ = try await Self.insertFile(client, source: alice, path: "rates 50%.txt", state: "archived")
            let topOld = try await Self.insertFile(client, source: alice, path: "top.txt", state: "archived")
            let topNew = try await Self.insertFile(client, source: alice, path: "top.txt", state: "staged", version: 2)
            let duplicate = try await Self.insertFile(client, source: alice, path: "a/shared copy.jpg", state: "duplicate", duplicateOf: bobsFile)
            let mkv = try await Self.insertFile(client, source: alice, path: "video/raw.mkv", state: "archived")
            let raw = try await Self.insertFile(client, source: alice, path: "video/raw.mpg", state: "archived", details: #"{"transcode_file_id": \#(mkv)}"#)
            _ = try await client.query("UPDATE objectstoragefiles SET details = jsonb_build_object('transcode_of', \(raw)::bigint) WHERE id = \(mkv)", logger: logger)
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "t").revealed
            let rootToken = try await accounts.issueToken(userName: "root", tokenName: "t").revealed
            let bobToken = try await accounts.issueToken(userName: "bob", tokenName: "t").revealed
            let encoded = label.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!

            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let asAlice = [("Authorization", "Bearer " + aliceToken)]
                #expect(try await request(base + "/sources/\(encoded)").status == 303, "no caller: to the login page")
                #expect(try await request(base + "/sources/\(encoded)", headers: [("Authorization", "Bearer " + bobToken)]).status == 404)

                // The root of the tree: folders with what they hold (newest versions), files directly here.
                let root = try await request(base + "/sources/\(encoded)", headers: asAlice)
                #expect(root.status == 200)
                #expect(root.body.contains("?dir=a%2F\">a/</a>") && root.body.contains("?dir=video%2F\">video/</a>"), "\(root.body)")
                #expect(root.body.contains("<td class=\"files\">4 files</td>"), "a/ holds four files at any depth")
                #expect(root.body.contains("top.txt</a>") && root.body.contains("version 2 of 2") && root.body.contains("/files/\(topNew)\""))
                #expect(!root.body.contains("/files/\(topOld)\""), "the tree shows the newest version")
                #expect(!root.body.contains("one.txt"), "files of sub-folders stay in them")
                #expect(root.body.contains("Not safe to destroy the original yet."), "staged files and an unfinished upload")

                let folder = try await request(base + "/sources/\(encoded)?dir=a/", headers: asAlice)
                #expect(folder.body.contains("?dir=a%2Fb%2F\">b/</a>") && folder.body.contains("two.txt</a>") && folder.body.contains("shared copy.jpg</a>"))
                #expect(folder.body.contains("<td class=\"files\">2 files</td>"))
                let empty = try await request(base + "/sources/\(encoded)?dir=nowhere/", headers: asAlice)
                #expect(empty.status == 200 && empty.body.contains("id=\"empty-folder\""))

                // Search: case-insensitive, % and _ are literal characters.
                let percent = try await request(base + "/sources/\(encoded)?q=%25", headers: asAlice)
                #expect(percent.body.contains("1 file matching") && percent.body.contains("rates 50%.txt"), "\(percent.body)")
                let underscore = try await request(base + "/sources/\(encoded)?q=_", headers: asAlice)
                #expect(underscore.body.contains("1 file matching") && underscore.body.contains("three_x.txt"))
                let caseless = try await request(base + "/sources/\(encoded)?q=ONE", headers: asAlice)
                #expect(caseless.body.contains("1 file matching") && caseless.body.contains("/files/\(one)\""))

                // Details: versions linked, the transcode both ways, the duplicate's holder never named to alice.
                let top = try await request(base + "/files/\(topNew)", headers: asAlice)
                #expect(top.body.contains("<a href=\"/files/\(topOld)\">1</a>") && top.body.contains("<strong>2</strong>"))
                #expect(top.body.contains(Self.hash) && top.body.contains("staging (waiting for the archive)"))
                let rawPage = try await request(base + "/files/\(raw)", headers: asAlice)
                #expect(rawPage.body.contains("id=\"transcode-link\">file \(mkv)</a>"))
                let mkvJSON = try jsonObject(try await request(base + "/api/files/\(mkv)", headers: asAlice).body)
                #expect(int64(mkvJSON["original_id"]) == raw && mkvJSON["transcode_id"] is NSNull)
                let dupPage = try await request(base + "/files/\(duplicate)", headers: asAlice)
                #expect(dupPage.body.contains("another person's source") && !dupPage.body.contains("/files/\(bobsFile)"), "\(dupPage.body)")
                let dupAsRoot = try await request(base + "/files/\(duplicate)", headers: [("Authorization", "Bearer " + rootToken)])
                #expect(dupAsRoot.body.contains("<a href=\"/files/\(bobsFile)\">file \(bobsFile)</a>"))
                #expect(try jsonObject(try await request(base + "/api/files/\(duplicate)", headers: asAlice).body)["duplicate_of"] is NSNull)

                // The verdict: archived but not audited; audited safe; files added since; an audit with problems.
                _ = try await client.query("UPDATE objectstoragefiles SET state = 'archived', archive_key = 'files/x' || id, archived_at = now() - interval '1 hour', created_at = now() - interval '1 hour' WHERE source_id = \(alice) AND state = 'staged'", logger: logger)
                _ = try await client.query("UPDATE objectstoragefiles SET archived_at = now() - interval '1 hour', created_at = now() - interval '1 hour' WHERE source_id = \(alice)", logger: logger)
                _ = try await client.query("UPDATE sources SET finished_at = now() WHERE id = \(alice)", logger: logger)
                func verdict() async throws -> String {
                    let page = try await request(base + "/sources/\(encoded)", headers: asAlice).body
                    guard let start = page.range(of: "<div id=\"verdict\""), let end = page[start.upperBound...].range(of: "</div>") else { return "" }
                    return String(page[start.lowerBound..<end.upperBound])
                }
                #expect(try await verdict().contains("Archived, not yet audited."))
                let audits = SourceAudits(client: client, logger: logger)
                try await audits.record(label: label, SourceAuditRecord(safe: true, files: 9, contentVerified: 7, sizeChecked: 2, problems: []))
                let safe = try await verdict()
                #expect(safe.contains("class=\"safe\"") && safe.contains("Safe to destroy the original.") && safe.contains("7 read back"), "\(safe)")
                _ = try await Self.insertFile(client, source: alice, path: "late.txt", state: "archived")
                #expect(try await verdict().contains("files were added or archived since"))
                try await audits.record(label: label, SourceAuditRecord(safe: false, files: 10, contentVerified: 9, sizeChecked: 0, problems: ["late.txt: files/x: missing <b>"]))
                let unsafe = try await verdict()
                #expect(unsafe.contains("found problems") && unsafe.contains("late.txt: files/x: missing &lt;b&gt;"), "\(unsafe)")
            }
        }
    }
}
