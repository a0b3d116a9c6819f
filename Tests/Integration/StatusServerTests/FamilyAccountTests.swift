import Accounts
import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

/// The family accounts on the status server (issue 21's foundation): login, sessions, CSRF, the rate limit, and
/// what each caller may see through the API. Real PostgreSQL, the real application (HummingbirdTesting's router).
@Suite("family accounts: login, sessions, CSRF, rate limit")
struct FamilyLoginTests {
    static let password = "a long enough password"

    static func accountsConfiguration(token: String? = nil, perAccount: Int = 5, perAddress: Int = 20, behindProxy: Bool = false) throws -> StatusServerConfiguration {
        var configuration = try testConfiguration(token: token)
        configuration.accounts = AccountSettings(failuresPerAccount: perAccount, failuresPerAddress: perAddress)
        configuration.behindTLSProxy = behindProxy
        return configuration
    }

    static func addMembers(_ names: [String], _ client: PostgresClient) async throws {
        let accounts = AccountService(client: client, logger: logger)
        for name in names { _ = try await accounts.addUser(name: name, role: .member, password: Secret(password)) }
    }

    @Test("an unknown user and a wrong password get the same answer; a right one gets an HttpOnly, SameSite, Path=/ session cookie")
    func sameAnswer() async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            _ = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            try await withStatusRoutes(try Self.accountsConfiguration(), client: client) { base in
                let form = try await LoginForm.open(base)
                #expect(form.page.contains(#"name="username""#) && form.page.contains(#"name="password""#) && form.page.contains(#"name="csrf""#))
                let unknown = try await form.submit(base, username: "mallory", password: Self.password)
                let wrong = try await form.submit(base, username: "alice", password: Self.password + "x")
                #expect(unknown.status == 401 && wrong.status == 401)
                #expect(unknown.body == wrong.body, "the same page for an unknown user and a wrong password")
                #expect(!unknown.headers["Set-Cookie"].contains { $0.hasPrefix("backup_session=") })
                #expect(!unknown.body.contains("mallory") && !wrong.body.contains(Self.password))

                let ok = try await form.submit(base, username: "alice", password: Self.password)
                #expect(ok.status == 303 && ok.headers["Location"].first == "/account")
                let setCookie = try #require(ok.headers["Set-Cookie"].first { $0.hasPrefix("backup_session=") })
                let attributes = setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                #expect(attributes.contains("httponly"))
                #expect(attributes.contains("samesite=lax"))
                #expect(attributes.contains("path=/"))
                #expect(!attributes.contains("secure"), "not behind TLS: no Secure (the browser would drop it on http)")
                let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
                let session = String(cookie.dropFirst("backup_session=".count))
                // Only a hash of the session id is stored.
                #expect(try await scalar(client, "SELECT count(*) FROM user_sessions WHERE id_hash = '\(SecretTokens.hash(Secret(session)))'", as: Int64.self) == 1)
                #expect(try await scalar(client, "SELECT count(*) FROM user_sessions WHERE id_hash = '\(session)'", as: Int64.self) == 0)
                let account = try await request(base + "/account", headers: [("Cookie", cookie)])
                #expect(account.status == 200 && account.body.contains("Signed in as <strong>alice</strong>"))
            }
            try await withStatusRoutes(try Self.accountsConfiguration(behindProxy: true), client: client) { base in
                let ok = try await LoginForm.open(base).submit(base, username: "alice", password: Self.password)
                let setCookie = try #require(ok.headers["Set-Cookie"].first { $0.hasPrefix("backup_session=") })
                #expect(setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.contains("secure"))
            }
        }
    }

    @Test("CSRF: a login, a logout or a log-out-everywhere without the form's token is refused and changes nothing")
    func csrfRefused() async throws {
        try await withCatalog { _, client in
            _ = try await AccountService(client: client, logger: logger).addUser(name: "alice", role: .member, password: Secret(Self.password))
            try await withStatusRoutes(try Self.accountsConfiguration(), client: client) { base in
                let form = try await LoginForm.open(base)
                let noToken = try await request(
                    base + "/login", method: .POST, headers: [("Content-Type", LoginForm.type), ("Cookie", form.cookie)],
                    body: "username=alice&password=\(LoginForm.encode(Self.password))")
                #expect(noToken.status == 403)
                let forged = try await request(
                    base + "/login", method: .POST, headers: [("Content-Type", LoginForm.type)],
                    body: "username=alice&password=\(LoginForm.encode(Self.password))&csrf=\(form.csrf)")
                #expect(forged.status == 403, "the form field without its cookie (another site's form) is refused")
                #expect(try await scalar(client, "SELECT count(*) FROM user_sessions", as: Int64.self) == 0)

                let session = try await form.logIn(base, username: "alice", password: Self.password)
                for path in ["/logout", "/logout-everywhere"] {
                    for body in ["", "csrf=", "csrf=\(form.csrf)", "csrf=" + String(repeating: "0", count: 64)] {
                        let refused = try await request(base + path, method: .POST, headers: [("Content-Type", LoginForm.type), ("Cookie", session)], body: body)
                        #expect(refused.status == 403, "\(path) with \(body.isEmpty ? "no body" : body)")
                    }
                }
                #expect(try await request(base + "/api/sources", headers: [("Cookie", session)]).status == 200, "the session is still alive")
            }
        }
    }

    @Test("logout ends the session on the server; log out everywhere ends every session of that user only")
    func logout() async throws {
        try await withCatalog { _, client in
            try await Self.addMembers(["alice", "bob"], client)
            try await withStatusRoutes(try Self.accountsConfiguration(), client: client) { base in
                let first = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let second = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let third = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let bobs = try await LoginForm.open(base).logIn(base, username: "bob", password: Self.password)

                let out = try await request(
                    base + "/logout", method: .POST, headers: [("Content-Type", LoginForm.type), ("Cookie", first)],
                    body: "csrf=\(try await csrf(base, first))")
                #expect(out.status == 303 && out.headers["Location"].first == "/login")
                #expect(out.headers["Set-Cookie"].contains { $0.hasPrefix("backup_session=;") || $0.hasPrefix("backup_session=\"\"") || $0.contains("Max-Age=0") })
                // The old cookie, replayed, opens nothing: the session is gone from the database.
                #expect(try await request(base + "/api/sources", headers: [("Cookie", first)]).status == 401)
                #expect(try await request(base + "/account", headers: [("Cookie", first)]).status == 303)
                #expect(try await request(base + "/api/sources", headers: [("Cookie", second)]).status == 200)

                let everywhere = try await request(
                    base + "/logout-everywhere", method: .POST, headers: [("Content-Type", LoginForm.type), ("Cookie", second)],
                    body: "csrf=\(try await csrf(base, second))")
                #expect(everywhere.status == 303)
                #expect(try await request(base + "/api/sources", headers: [("Cookie", second)]).status == 401)
                #expect(try await request(base + "/api/sources", headers: [("Cookie", third)]).status == 401, "every session of alice ended")
                #expect(try await request(base + "/api/sources", headers: [("Cookie", bobs)]).status == 200, "bob's session is not alice's")
                #expect(try await scalar(client, "SELECT count(*) FROM user_sessions", as: Int64.self) == 1)
            }
        }
    }

    @Test("the rate limit: per account (even with the right password afterwards) and per client address")
    func rateLimit() async throws {
        try await withCatalog { _, client in
            try await Self.addMembers(["alice", "bob"], client)
            try await withStatusRoutes(try Self.accountsConfiguration(perAccount: 3, perAddress: 5, behindProxy: true), client: client) { base in
                let form = try await LoginForm.open(base)
                for attempt in 1...3 {
                    let wrong = try await form.submit(base, username: "alice", password: "wrong \(attempt) password", address: "198.51.100.\(attempt)")
                    #expect(wrong.status == 401)
                }
                let limited = try await form.submit(base, username: "alice", password: Self.password, address: "198.51.100.9")
                #expect(limited.status == 429, "the account is limited from any address")
                #expect(limited.body.contains("Too many failed logins"))
                #expect(!limited.headers["Set-Cookie"].contains { $0.hasPrefix("backup_session=") })
                // An unknown name is limited the same way (nothing tells which names exist).
                for _ in 1...3 { _ = try await form.submit(base, username: "nobody", password: "whatever it is", address: "198.51.100.20") }
                #expect(try await form.submit(base, username: "nobody", password: "whatever it is", address: "198.51.100.21").status == 429)

                // Per address: five failures over five names from one address close that address, for bob too.
                for index in 1...5 {
                    #expect(try await form.submit(base, username: "guess\(index)", password: "guess password", address: "203.0.113.7").status == 401)
                }
                #expect(try await form.submit(base, username: "bob", password: Self.password, address: "203.0.113.7").status == 429)
                #expect(try await form.submit(base, username: "bob", password: Self.password, address: "203.0.113.8").status == 303, "another address still logs in")
            }
        }
    }

    @Test("behind API Gateway: the address is the header the gateway overwrites (BACKUP_STATUS_CLIENT_IP_HEADER), so a forged X-Forwarded-For does not dodge the per-address limit")
    func gatewayClientAddress() async throws {
        var environment = ["BACKUP_STATUS_CLIENT_IP_HEADER": "X-Backup-Client-Ip", "BACKUP_STATUS_BEHIND_TLS_PROXY": "true"]
        let parsed = try StatusServerConfiguration.fromEnvironment(environment)
        #expect(parsed.clientAddressHeader == "X-Backup-Client-Ip" && parsed.behindTLSProxy)
        environment["BACKUP_STATUS_CLIENT_IP_HEADER"] = "X-Client Ip:"
        #expect(throws: StatusServerConfigurationError.self) { _ = try StatusServerConfiguration.fromEnvironment(environment) }
        try await withCatalog { _, client in
            try await Self.addMembers(["alice"], client)
            var configuration = try Self.accountsConfiguration(perAccount: 100, perAddress: 3, behindProxy: true)
            configuration.clientAddressHeader = "X-Backup-Client-Ip"
            try await withStatusRoutes(configuration, client: client) { base in
                let form = try await LoginForm.open(base)
                let gateway = [("X-Backup-Client-Ip", "192.0.2.44")]
                // Each attempt forges a new X-Forwarded-For; the gateway's header says it is the same client.
                for attempt in 1...3 {
                    let wrong = try await form.submit(base, username: "guess\(attempt)", password: "guess password", address: "198.51.100.\(attempt)", extraHeaders: gateway)
                    #expect(wrong.status == 401)
                }
                let limited = try await form.submit(base, username: "alice", password: Self.password, address: "198.51.100.77", extraHeaders: gateway)
                #expect(limited.status == 429, "a forged X-Forwarded-For does not make a new client")
                let other = try await form.submit(base, username: "alice", password: Self.password, address: "198.51.100.1", extraHeaders: [("X-Backup-Client-Ip", "192.0.2.45")])
                #expect(other.status == 303, "another client (by the gateway's header) still logs in")
            }
        }
    }

    @Test("BACKUP_UPLOAD_CHUNK_MIB sets the upload page's chunk size (default 64 MiB); anything but a whole number from 1 to 1024 is one line naming it")
    func uploadChunkSize() throws {
        #expect(try StatusServerConfiguration.fromEnvironment([:]).uploads.chunkBytes == 64 << 20)
        #expect(try StatusServerConfiguration.fromEnvironment(["BACKUP_UPLOAD_CHUNK_MIB": "8"]).uploads.chunkBytes == 8 << 20)
        for bad in ["0", "1025", "8.5", "8M", "-1"] {
            do {
                _ = try StatusServerConfiguration.fromEnvironment(["BACKUP_UPLOAD_CHUNK_MIB": bad])
                Issue.record("\(bad) was accepted")
            } catch {
                #expect("\(error)".contains("BACKUP_UPLOAD_CHUNK_MIB") && !"\(error)".contains("\n"), "\(error)")
            }
        }
    }

    @Test("the operator's BACKUP_STATUS_TOKEN keeps working as before; it is not a user, and a user's token is not the operator's")
    func operatorToken() async throws {
        let token = "operator token for monitoring"
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            let accounts = AccountService(client: client, logger: logger)
            _ = try await accounts.addUser(name: "root", role: .admin, password: Secret(Self.password))
            let personal = try await accounts.issueToken(userName: "root", tokenName: "script")
            try await withStatusRoutes(try Self.accountsConfiguration(token: token), client: client) { base in
                for path in ["/api/status", "/metrics", "/"] {
                    #expect(try await request(base + path, headers: [("Authorization", "Bearer " + token)]).status == 200)
                    #expect(try await request(base + path, headers: [("Authorization", "Bearer " + personal.revealed)]).status == 401)
                }
                #expect(try await request(base + "/api/sources", headers: [("Authorization", "Bearer " + token)]).status == 401)
                let listing = try await request(base + "/api/sources", headers: [("Authorization", "Bearer " + personal.revealed)])
                #expect(listing.status == 200 && listing.body.contains("DVD 12"), "an admin's token sees the ownerless sources")
                #expect(try await request(base + "/login").status == 200, "the login form is open without the operator's token")
            }
        }
    }

    func csrf(_ base: RouterBase, _ cookie: String) async throws -> String {
        let page = try await request(base + "/account", headers: [("Cookie", cookie)]).body
        return try #require(LoginForm.hiddenCSRF(in: page))
    }
}

/// The login form as a browser uses it: GET (cookie and hidden field), then POST both back.
struct LoginForm {
    static let type = "application/x-www-form-urlencoded"
    let csrf: String
    let cookie: String
    let page: String

    static func open(_ base: RouterBase) async throws -> LoginForm {
        let response = try await request(base + "/login")
        guard response.status == 200, let field = hiddenCSRF(in: response.body),
            let setCookie = response.headers["Set-Cookie"].first(where: { $0.hasPrefix("backup_login_csrf=") }),
            let cookie = setCookie.split(separator: ";").first.map(String.init)
        else { throw TestFailure("no login form: \(response.status) \(response.body.prefix(200))") }
        return LoginForm(csrf: field, cookie: cookie, page: response.body)
    }

    static func hiddenCSRF(in page: String) -> String? {
        guard let range = page.range(of: #"name="csrf" value=""#) else { return nil }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }

    func submit(_ base: RouterBase, username: String, password: String, address: String? = nil, extraHeaders: [(String, String)] = []) async throws -> HTTPResult {
        var headers = [("Content-Type", Self.type), ("Cookie", cookie)] + extraHeaders
        if let address { headers.append(("X-Forwarded-For", "10.0.0.1, " + address)) }
        return try await request(
            base + "/login", method: .POST, headers: headers,
            body: "username=\(Self.encode(username))&password=\(Self.encode(password))&csrf=\(csrf)")
    }

    /// Logs in and returns the `Cookie` header value of the new session.
    func logIn(_ base: RouterBase, username: String, password: String) async throws -> String {
        let response = try await submit(base, username: username, password: password)
        guard response.status == 303, let setCookie = response.headers["Set-Cookie"].first(where: { $0.hasPrefix("backup_session=") }),
            let cookie = setCookie.split(separator: ";").first.map(String.init)
        else { throw TestFailure("login of \(username) failed: \(response.status)") }
        return cookie
    }
}
