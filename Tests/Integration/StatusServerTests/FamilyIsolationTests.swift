import Accounts
import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// Two members and an admin against every family route, over a randomized catalog (labels with spaces, `/`, `%`
/// and non-ASCII; random owners, ownerless sources among them): each sees exactly what is theirs (the admin
/// everything), and another person's label is 404 with the very answer a label that does not exist gets.
@Suite("family accounts: isolation between members")
struct FamilyIsolationTests {
    struct Source {
        let label: String
        let owner: String?
        var files: [(id: Int64, path: String, state: String)]
    }

    static let states = ["staged", "transcoded", "failed", "unreadable"]
    static let password = "a long enough password"

    @Test("every caller sees exactly their own sources and files; another's label is 404 like an unknown one", arguments: [UInt64.random(in: 0...UInt64.max)])
    func isolation(seed: UInt64) async throws {
        var random = SplitMix(seed: seed)
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            var ids: [String: Int64] = [:]
            for (name, role) in [("alice", AccountRole.member), ("bob", .member), ("root", .admin)] {
                ids[name] = try await accounts.addUser(name: name, role: role, password: Secret(Self.password)).id
            }
            var sources: [Source] = []
            let pieces = ["DVD", "Disc 12", "a/b", "100%", "Fotos é", "tax 2019", "x?y", "#1", "..", "home videos"]
            for index in 0..<Int.random(in: 8...16, using: &random) {
                let label = "\(pieces.randomElement(using: &random)!) \(index)"
                let owner = [Optional("alice"), "bob", "root", nil].randomElement(using: &random)!
                let sourceID = try await scalar(client, """
                    INSERT INTO sources (label, owner_id) VALUES ('\(label.replacingOccurrences(of: "'", with: "''"))', \(owner.flatMap { ids[$0] }.map(String.init) ?? "NULL")) RETURNING id
                    """, as: Int64.self)
                var source = Source(label: label, owner: owner, files: [])
                for fileIndex in 0..<Int.random(in: 0...4, using: &random) {
                    let state = Self.states.randomElement(using: &random)!
                    let path = "dir \(index)/file \(fileIndex).bin"
                    let hash = state == "unreadable" ? "NULL" : "'\(String(repeating: "ab", count: 32))'"
                    let id = try await scalar(client, """
                        INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state)
                        VALUES (\(sourceID), 'file \(fileIndex).bin', '\(path)', 'regular', \(fileIndex * 100), \(hash), '\(state)') RETURNING id
                        """, as: Int64.self)
                    source.files.append((id, path, state))
                }
                sources.append(source)
            }
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "laptop")
            let rootToken = try await accounts.issueToken(userName: "root", tokenName: "script")
            let catalogSources = sources
            let userIDs = ids
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                var random = SplitMix(seed: seed ^ 0x5EED)
                let bobCookie = try await LoginForm.open(base).logIn(base, username: "bob", password: Self.password)
                let callers: [(name: String, admin: Bool, header: (String, String))] = [
                    ("alice", false, ("Authorization", "Bearer " + aliceToken.revealed)),
                    ("bob", false, ("Cookie", bobCookie)),
                    ("root", true, ("Authorization", "Bearer " + rootToken.revealed)),
                ]
                let unknown = try await request(base + "/api/sources/\(Self.encode("no such source"))/files", headers: [callers[0].header])
                #expect(unknown.status == 404)
                let unknownPage = try await request(base + "/sources/\(Self.encode("no such source"))", headers: [callers[0].header])
                let unknownFile = try await request(base + "/files/999999999", headers: [callers[0].header])
                let unknownFileJSON = try await request(base + "/api/files/999999999", headers: [callers[0].header])
                #expect(unknownPage.status == 404 && unknownFile.status == 404 && unknownFileJSON.status == 404)
                for caller in callers {
                    let visible = catalogSources.filter { caller.admin || $0.owner == caller.name }
                    let listing = try jsonObject(try await request(base + "/api/sources", headers: [caller.header]).body)
                    let listed = try #require(listing["sources"] as? [[String: Any]])
                    #expect(Set(listed.compactMap { $0["label"] as? String }) == Set(visible.map(\.label)), "seed \(seed): \(caller.name)'s list")
                    for entry in listed {
                        guard let label = entry["label"] as? String, let source = visible.first(where: { $0.label == label }) else { continue }
                        #expect((entry["owner"] as? String) == source.owner, "seed \(seed)")
                        #expect(int64(entry["files"]) == Int64(source.files.count), "seed \(seed)")
                        let counts = (entry["state"] as? [String: Any] ?? [:]).mapValues { int64($0) ?? -1 }
                        #expect(counts == Dictionary(grouping: source.files, by: \.state).mapValues { Int64($0.count) }, "seed \(seed)")
                    }
                    for source in catalogSources.shuffled(using: &random) {
                        let response = try await request(base + "/api/sources/\(Self.encode(source.label))/files", headers: [caller.header])
                        if caller.admin || source.owner == caller.name {
                            #expect(response.status == 200, "seed \(seed): \(caller.name) on own \(source.label)")
                            let files = try #require(try jsonObject(response.body)["files"] as? [[String: Any]])
                            #expect(Set(files.compactMap { int64($0["id"]) }) == Set(source.files.map(\.id)), "seed \(seed)")
                        } else {
                            #expect(response.status == 404, "seed \(seed): \(caller.name) on \(source.owner ?? "nobody")'s \(source.label)")
                            #expect(response.body == unknown.body, "nothing tells another's source from a missing one")
                        }
                        // The browsing pages and the file details: the same rule, the same 404.
                        let mine = caller.admin || source.owner == caller.name
                        let page = try await request(base + "/sources/\(Self.encode(source.label))", headers: [caller.header])
                        #expect(page.status == (mine ? 200 : 404), "seed \(seed): \(caller.name) on the page of \(source.label)")
                        if !mine { #expect(page.body == unknownPage.body) }
                        for file in source.files {
                            let details = try await request(base + "/files/\(file.id)", headers: [caller.header])
                            let json = try await request(base + "/api/files/\(file.id)", headers: [caller.header])
                            #expect(details.status == (mine ? 200 : 404) && json.status == (mine ? 200 : 404), "seed \(seed): \(caller.name) on file \(file.id)")
                            if mine {
                                #expect(details.body.contains(htmlEscape(file.path)), "seed \(seed)")
                            } else {
                                #expect(details.body == unknownFile.body && json.body == unknownFileJSON.body)
                            }
                        }
                    }
                }
                try await Self.checkRestores(base: base, callers: callers, sources: catalogSources, userIDs: userIDs, client: client, seed: seed)

                // Bob's page lists his sources and nobody else's.
                let page = try await request(base + "/account", headers: [("Cookie", bobCookie)]).body
                for source in catalogSources where source.owner == "bob" {
                    #expect(page.contains(">\(htmlEscape(source.label))</a></td>"), "seed \(seed): bob's own \(source.label) is listed and linked")
                }
                for source in catalogSources where source.owner != "bob" {
                    #expect(!page.contains(">\(htmlEscape(source.label))</a></td>"), "seed \(seed): \(source.label) on bob's page")
                }
                // Without credentials, with a revoked or an unknown token: 401 everywhere.
                let anyLabel = Self.encode(catalogSources[0].label)
                #expect(try await request(base + "/api/sources").status == 401)
                #expect(try await request(base + "/api/sources/\(anyLabel)/files").status == 401)
                #expect(try await request(base + "/api/sources", headers: [("Authorization", "Bearer pbk_" + String(repeating: "A", count: 43))]).status == 401)
                _ = try await accounts.revokeTokens(userName: "alice", tokenName: "laptop")
                #expect(try await request(base + "/api/sources", headers: [callers[0].header]).status == 401, "a revoked token opens nothing")
            }
        }
    }

    struct RestoreRef { let id: Int64; let asker: String }

    /// Restores: each asked for by the source's owner (root for an ownerless one); only the asker and the admin see
    /// it, and asking for one of another's source is the same 404.
    static func checkRestores(
        base: RouterBase, callers: [(name: String, admin: Bool, header: (String, String))], sources catalogSources: [Source], userIDs: [String: Int64],
        client: PostgresClient, seed: UInt64
    ) async throws {
        let family = FamilyCatalog(client: client, logger: logger)
        var restores: [RestoreRef] = []
        for source in catalogSources {
            let asker = source.owner ?? "root"
            let user = AccountUser(id: userIDs[asker]!, name: asker, role: asker == "root" ? .admin : .member)
            if case .created(let id)? = try await family.requestRestore(
                sourceLabel: source.label, fileID: nil, directory: "", tier: "Bulk", days: 1, expectedReady: { _ in .seconds(3600) }, visibleTo: user)
            {
                restores.append(RestoreRef(id: id, asker: asker))
            }
        }
        let unknownRestore = try await request(base + "/api/restores/999999999", headers: [callers[0].header])
        #expect(unknownRestore.status == 404)
        for caller in callers {
            let bySession = caller.header.0 == "Cookie"
            for restore in restores {
                let mine = caller.admin || restore.asker == caller.name
                for path in ["/api/restores/\(restore.id)", "/restores/\(restore.id)/download"] + (bySession ? ["/restores/\(restore.id)"] : []) {
                    let answer = try await request(base + path, headers: [caller.header])
                    #expect(mine ? answer.status != 404 : answer.status == 404, "seed \(seed): \(caller.name) on \(path) of \(restore.asker)")
                    if !mine && path.hasPrefix("/api/") { #expect(answer.body == unknownRestore.body) }
                }
                if !bySession {
                    let uncache = try await request(base + "/restores/\(restore.id)/uncache", method: .POST, headers: [caller.header])
                    #expect(mine ? uncache.status == 200 : uncache.status == 404, "seed \(seed): \(caller.name) uncaching \(restore.asker)'s")
                }
            }
            guard !bySession else { continue }
            for source in catalogSources {
                let asked = try await request(
                    base + "/restores", method: .POST, headers: [caller.header, ("Content-Type", LoginForm.type)],
                    body: "source=\(Self.encode(source.label))&dir=")
                let mine = caller.admin || source.owner == caller.name
                #expect(mine ? asked.status != 404 : asked.status == 404, "seed \(seed): \(caller.name) asking for \(source.label)")
            }
        }

    }

    @Test("the sources' counts are one read shared by every member for snapshotMaxAge; which sources a member sees is always read live, so a source given away leaves the old owner's list at once")
    func sharedCountsLiveVisibility() async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            var ids: [String: Int64] = [:]
            for name in ["alice", "bob"] {
                ids[name] = try await accounts.addUser(name: name, role: .member, password: Secret(Self.password)).id
            }
            let aliceID = ids["alice"]!, bobID = ids["bob"]!
            let album = try await scalar(client, "INSERT INTO sources (label, owner_id) VALUES ('Album', \(aliceID)) RETURNING id", as: Int64.self)
            @Sendable func addFile(_ n: Int) async throws {
                _ = try await scalar(client, """
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state)
                    VALUES (\(album), 'f\(n)', 'f\(n)', 'regular', 1, '\(String(repeating: "cd", count: 32))', 'staged') RETURNING id
                    """, as: Int64.self)
            }
            for n in 1...3 { try await addFile(n) }
            let alice = ("Authorization", "Bearer " + (try await accounts.issueToken(userName: "alice", tokenName: "t")).revealed)
            let bob = ("Authorization", "Bearer " + (try await accounts.issueToken(userName: "bob", tokenName: "t")).revealed)
            var configuration = try testConfiguration()
            configuration.snapshotMaxAge = .seconds(120)  // far longer than this test: every count below is the first read's
            try await withStatusRoutes(configuration, client: client) { base in
                func listed(_ caller: (String, String)) async throws -> [String: Int64] {
                    let sources = try #require(try jsonObject(try await request(base + "/api/sources", headers: [caller]).body)["sources"] as? [[String: Any]])
                    return Dictionary(uniqueKeysWithValues: sources.map { ($0["label"] as? String ?? "?", int64($0["files"]) ?? -1) })
                }
                #expect(try await listed(alice) == ["Album": 3])
                try await addFile(4)
                _ = try await scalar(client, "INSERT INTO sources (label, owner_id) VALUES ('New disc', \(aliceID)) RETURNING id", as: Int64.self)
                #expect(try await listed(alice) == ["Album": 3, "New disc": 0], "a new source is listed at once; the counts are the shared snapshot's")
                _ = try await scalar(client, "UPDATE sources SET owner_id = \(bobID) WHERE id = \(album) RETURNING id", as: Int64.self)
                #expect(try await listed(alice) == ["New disc": 0], "a source given to bob leaves alice's list at once, snapshot or not")
                #expect(try await listed(bob) == ["Album": 3])
                let page = try await request(base + "/sources/Album", headers: [alice])
                #expect(page.status == 404)
            }
        }
    }

    static func encode(_ label: String) -> String {
        label.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? label
    }
}
