import Foundation
import NIOHTTP1
import StatusServer
import Testing
import TestSupport

@Suite("BACKUP_STATUS_TOKEN: bearer, login cookie, open /healthz")
struct AuthTests {
    let token = "correct horse battery staple"

    @Test("every route but /healthz needs the token; a bearer header or the login cookie opens them")
    func tokenEnforced() async throws {
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            try await withStatusRoutes(try testConfiguration(token: token), client: client) { base in
                for path in ["/", "/api/status", "/metrics"] {
                    let anonymous = try await request(base + path)
                    #expect(anonymous.status == 401, "\(path) without a token")
                    #expect(anonymous.headers["WWW-Authenticate"].first?.hasPrefix("Bearer") == true)
                    #expect(!anonymous.body.contains("DVD 12"), "nothing from the catalog leaks")
                    #expect(try await request(base + path, headers: [("Authorization", "Bearer wrong")]).status == 401)
                    #expect(try await request(base + path, headers: [("Authorization", "Bearer " + token.dropLast())]).status == 401, "a prefix is not enough")
                    #expect(try await request(base + path, headers: [("Authorization", "Basic " + token)]).status == 401)
                    let authorised = try await request(base + path, headers: [("Authorization", "Bearer " + token)])
                    #expect(authorised.status == 200, "\(path) with the bearer token")
                }
                #expect(try await request(base + "/healthz").status == 200, "/healthz stays open for load balancers")

                // A browser gets the login form.
                let browser = try await request(base + "/", headers: [("Accept", "text/html")])
                #expect(browser.status == 401)
                #expect(browser.body.contains("<form method=\"post\" action=\"/login\">"))

                let refused = try await request(
                    base + "/login", method: .POST, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=nope")
                #expect(refused.status == 401)
                #expect(refused.headers["Set-Cookie"].isEmpty)

                let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
                let login = try await request(
                    base + "/login", method: .POST, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=\(encoded)")
                #expect(login.status == 303)
                #expect(login.headers["Location"].first == "/")
                let setCookie = try #require(login.headers["Set-Cookie"].first)
                #expect(setCookie.contains("HttpOnly"))
                #expect(setCookie.contains("SameSite=Strict"))
                #expect(!setCookie.contains(encoded) && !setCookie.contains("horse"), "the cookie never holds the token")
                let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
                let page = try await request(base + "/", headers: [("Cookie", cookie)])
                #expect(page.status == 200)
                #expect(page.body.contains("id=\"files-total\">13<"))
                #expect(try await request(base + "/api/status", headers: [("Cookie", cookie)]).status == 200)
                #expect(try await request(base + "/", headers: [("Cookie", "backup_status_session=0000")]).status == 401)
            }
        }
    }

    @Test("without a token the server runs on loopback with every route open")
    func openOnLoopback() async throws {
        try await withCatalog { _, client in
            // A real server: the point is the address it binds.
            try await withStatusServer(try testConfiguration(), client: client) { base async throws in
                #expect(base.hasPrefix("http://127.0.0.1:"))
                #expect(try await request(base + "/api/status").status == 200)
                #expect(try await request(base + "/login").status == 200, "the family login form is always there (issue 21)")
            }
        }
    }
}
