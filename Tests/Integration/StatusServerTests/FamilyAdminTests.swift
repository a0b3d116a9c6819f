import Accounts
import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// The admin side: the admin page (404 for members), disabling a user (sessions and tokens dead at once) and enabling
/// again, one-time invitation links, and self-registration only while an admin has it on. Real PostgreSQL, the
/// real router.
@Suite("family pages: admin, invitations, registration")
struct FamilyAdminTests {
    static let password = "a long enough password"
    static let form = "application/x-www-form-urlencoded"

    /// Opens a new-account form (invitation or registration) and submits it; returns the answer.
    static func makeAccount(_ base: RouterBase, _ path: String, name: String, password: String) async throws -> HTTPResult {
        let page = try await request(base + path)
        guard page.status == 200, let csrf = LoginForm.hiddenCSRF(in: page.body),
            let cookie = page.headers["Set-Cookie"].first(where: { $0.hasPrefix("backup_login_csrf=") })?.split(separator: ";").first.map(String.init)
        else { return page }
        return try await request(base + path, method: .POST, headers: [("Cookie", cookie), ("Content-Type", form)],
                                 body: "username=\(LoginForm.encode(name))&password=\(LoginForm.encode(password))&csrf=\(csrf)")
    }

    @Test("admin page for admins only; disable ends sessions and tokens, enable restores the login; invitations are one-time and expire; registration only while on")
    func admin() async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            _ = try await accounts.addUser(name: "root", role: .admin, password: Secret(Self.password))
            _ = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            let aliceToken = try await accounts.issueToken(userName: "alice", tokenName: "t").revealed
            try await exec(client, "INSERT INTO workers (id, role, host) VALUES (gen_random_uuid(), 'archiver', 'box-1')")
            try await exec(client, "INSERT INTO alerts (event_key, kind, message) VALUES ('k1', 'worker_dead', 'archiver on box-2 stopped heartbeating')")

            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let rootCookie = try await LoginForm.open(base).logIn(base, username: "root", password: Self.password)
                let aliceCookie = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                #expect(try await request(base + "/admin", headers: [("Cookie", aliceCookie)]).status == 404, "a member sees no admin page")
                #expect(try await request(base + "/admin").status == 404)
                let page = try await request(base + "/admin", headers: [("Cookie", rootCookie)])
                #expect(page.status == 200 && page.body.contains("id=\"disable-alice\"") && page.body.contains("box-1"))
                #expect(page.body.contains("archiver on box-2 stopped heartbeating") && page.body.contains("Self-registration is <strong>off</strong>"))
                let csrf = try #require(LoginForm.hiddenCSRF(in: page.body))
                let asRoot = [("Cookie", rootCookie), ("Content-Type", Self.form)]

                // A member's forged admin form, and the admin's without CSRF: refused, nothing changed.
                #expect(try await request(base + "/admin/users/alice/disable", method: .POST, headers: [("Cookie", aliceCookie), ("Content-Type", Self.form)], body: "csrf=\(csrf)").status == 404)
                #expect(try await request(base + "/admin/users/alice/disable", method: .POST, headers: asRoot, body: "csrf=forged").status == 404)
                #expect(try await request(base + "/account", headers: [("Cookie", aliceCookie)]).status == 200)

                // Disable: her session and token stop at once, and she cannot log in; enable: she can again.
                #expect(try await request(base + "/admin/users/alice/disable", method: .POST, headers: asRoot, body: "csrf=\(csrf)").status == 303)
                #expect(try await request(base + "/account", headers: [("Cookie", aliceCookie)]).status == 303, "the session is gone")
                #expect(try await request(base + "/api/sources", headers: [("Authorization", "Bearer " + aliceToken)]).status == 401, "the token is dead")
                #expect(try await LoginForm.open(base).submit(base, username: "alice", password: Self.password).status == 401)
                #expect(try await request(base + "/admin/users/alice/enable", method: .POST, headers: asRoot, body: "csrf=\(csrf)").status == 303)
                #expect(try await LoginForm.open(base).submit(base, username: "alice", password: Self.password).status == 303)
                #expect(try await request(base + "/admin/users/root/disable", method: .POST, headers: asRoot, body: "csrf=\(csrf)").status == 404, "not oneself")

                // An invitation: shown once, used once.
                let invited = try await request(base + "/admin/invitations", method: .POST, headers: asRoot, body: "role=member&days=3&csrf=\(csrf)")
                let link = try #require(invited.body.range(of: "id=\"invitation-link\" href=\"").map { String(invited.body[$0.upperBound...].prefix { $0 != "\"" }) })
                #expect(link.hasPrefix("/invite/inv_"))
                #expect(try await scalar(client, "SELECT count(*) FROM invitations WHERE token_hash = '\(link.dropFirst(8))'", as: Int64.self) == 0, "only the hash")
                let weak = try await Self.makeAccount(base, link, name: "carol", password: "short")
                #expect(weak.status == 400 && weak.body.contains("too short"), "a refused password keeps the invitation: \(weak.status)")
                let joined = try await Self.makeAccount(base, link, name: "carol", password: Self.password)
                #expect(joined.status == 303 && joined.headers["Location"].first == "/account")
                let carolCookie = try #require(joined.headers["Set-Cookie"].first { $0.hasPrefix("backup_session=") }?.split(separator: ";").first.map(String.init))
                #expect(try await request(base + "/account", headers: [("Cookie", carolCookie)]).body.contains("Signed in as <strong>carol</strong> (member)"))
                #expect(try await request(base + link).status == 404, "used once")
                #expect(try await Self.makeAccount(base, link, name: "dave", password: Self.password).status == 404)
                // An expired invitation is dead too.
                let second = try await request(base + "/admin/invitations", method: .POST, headers: asRoot, body: "role=admin&days=1&csrf=\(csrf)")
                let expiring = try #require(second.body.range(of: "id=\"invitation-link\" href=\"").map { String(second.body[$0.upperBound...].prefix { $0 != "\"" }) })
                try await exec(client, "UPDATE invitations SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE used_at IS NULL")
                #expect(try await request(base + expiring).status == 404)

                // Retry of a failed file: admins only; refused without a staged copy; queued again with one.
                let source = try await scalar(client, "INSERT INTO sources (label) VALUES ('Old disc') RETURNING id", as: Int64.self)
                let failed = try await FamilyBrowseTests.insertFile(client, source: source, path: "broken.bin", state: "failed")
                #expect(try await request(base + "/admin/files/\(failed)/retry", method: .POST, headers: [("Cookie", carolCookie), ("Content-Type", Self.form)], body: "csrf=\(csrf)").status == 404)
                let noCopy = try await request(base + "/admin/files/\(failed)/retry", method: .POST, headers: asRoot, body: "csrf=\(csrf)")
                #expect(noCopy.body.contains("has no copy in staging"), "\(noCopy.body.suffix(500))")
                try await exec(client, "UPDATE objectstoragefiles SET storage = 'staging', storage_key = 'staging/k', attempts = 5 WHERE id = \(failed)")
                let queued = try await request(base + "/admin/files/\(failed)/retry", method: .POST, headers: asRoot, body: "csrf=\(csrf)")
                #expect(queued.body.contains("is queued again (staged)"))
                #expect(try await scalar(client, "SELECT state || ':' || attempts FROM objectstoragefiles WHERE id = \(failed)", as: String.self) == "staged:0")

                // Registration: closed by default; open, then closed again.
                #expect(try await request(base + "/register").status == 404)
                #expect(try await request(base + "/admin/registration", method: .POST, headers: asRoot, body: "value=on&csrf=\(csrf)").status == 303)
                let registered = try await Self.makeAccount(base, "/register", name: "erin", password: Self.password)
                #expect(registered.status == 303)
                #expect(try await scalar(client, "SELECT role FROM users WHERE name = 'erin'", as: String.self) == "member")
                let taken = try await Self.makeAccount(base, "/register", name: "erin", password: Self.password)
                #expect(taken.status == 400 && taken.body.contains("exists already"))
                #expect(try await request(base + "/admin/registration", method: .POST, headers: asRoot, body: "value=off&csrf=\(csrf)").status == 303)
                #expect(try await request(base + "/register").status == 404)
            }
        }
    }
}
