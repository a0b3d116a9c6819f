import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import PostgresNIO

/// The family archive's routes (issue 21): `/login`, `/logout`, `/logout-everywhere`, `/account`, the API
/// `GET /api/sources`, `GET /api/sources/{label}/files`, `GET /files/{id}/download` (FamilyDownloadRoute), and the
/// pages `/sources/{label}`, `/files/{id}` with `/api/files/{id}` (FamilyBrowseRoutes). Each checks its caller itself (TokenMiddleware lets
/// them through); a member sees only their own sources, an admin every source, and what the caller may not see is
/// answered 404 exactly like what does not exist.
enum FamilyRoutes {
    /// Paths TokenMiddleware leaves to these routes.
    static func isFamilyPath(_ path: String) -> Bool {
        ["/login", "/logout", "/logout-everywhere", "/account", "/api/sources", "/admin", "/register", "/upload", "/upload.js", "/api/uploads",
         "/restores", "/api/restores"].contains(path) || path.hasPrefix("/restores/") || path.hasPrefix("/api/restores/")
            || path.hasPrefix("/api/sources/") || path.hasPrefix("/admin/") || path.hasPrefix("/invite/") || path.hasPrefix("/api/uploads/")
            || path.hasPrefix("/files/") || path.hasPrefix("/sources/") || path.hasPrefix("/api/files/") || path.hasPrefix("/share/") || path == "/static/live.js"
    }

    static let html = "text/html; charset=utf-8"
    /// `GET /api/sources/{label}/files` answers at most this many files per request (`?limit=` up to the maximum).
    static let filesPage = 1000
    static let filesPageMax = 10_000

    static func add(
        to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog, sourceCounts: SnapshotCache<SourceStateCounts>,
        settings: AccountSettings, staging: (any ObjectStore)?,
        tokenLogin: (@Sendable ([String: String], Request) async -> Response?)?
    ) {
        router.get("/login") { _, _ -> Response in
            let csrf = SecretTokens.generate().revealed
            var response = Response.text(AccountPages.login(csrf: csrf), contentType: html)
            response.setCookie(auth.cookie(FamilyAuth.loginCSRFCookie, csrf, maxAge: 3600, sameSite: .strict))
            return response
        }
        router.post("/login") { request, context -> Response in
            var request = request
            let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
            // The operator's token form (BACKUP_STATUS_TOKEN), as before accounts.
            if form["username"] == nil, let tokenLogin, let response = await tokenLogin(form, request) { return response }
            let cookieCSRF = request.cookies[FamilyAuth.loginCSRFCookie]?.value ?? ""
            guard !cookieCSRF.isEmpty, SecretTokens.constantTimeEqual(form[FamilyAuth.csrfField] ?? "", cookieCSRF) else {
                return refusal(.forbidden, "The form expired or did not come from this site: reload the page and log in again.")
            }
            let name = form["username"] ?? "", password = Secret(form["password"] ?? "")
            switch try await auth.accounts.login(name: name, password: password, address: auth.clientAddress(request, context: context)) {
            case .success(_, let session):
                var response = Response(status: .seeOther, headers: [.location: "/account"])
                response.setCookie(auth.cookie(FamilyAuth.sessionCookie, session.revealed, maxAge: Int(settings.sessionLifetime.components.seconds)))
                response.setCookie(auth.cookie(FamilyAuth.loginCSRFCookie, "", maxAge: 0, sameSite: .strict))
                return response
            case .refused:
                // A little patience for whoever guesses; the same words for an unknown name and a wrong password.
                try? await Task.sleep(for: .milliseconds(200))
                return refusal(.unauthorized, "Wrong user name or password.", csrf: cookieCSRF)
            case .limited:
                let minutes = max(1, Int(settings.window.components.seconds) / 60)
                return refusal(.tooManyRequests, "Too many failed logins: try again in \(minutes) minutes.", csrf: cookieCSRF)
            }
        }
        router.post("/logout") { request, _ -> Response in
            try await endSessions(request, auth: auth, everywhere: false)
        }
        router.post("/logout-everywhere") { request, _ -> Response in
            try await endSessions(request, auth: auth, everywhere: true)
        }
        router.get("/account") { request, _ -> Response in
            guard let (user, session) = try await auth.sessionUser(request) else {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            let sources = try await family.sources(visibleTo: user, counts: try await sourceCounts.snapshot())
            return Response.text(AccountPages.account(user, sources: sources, csrf: SecretTokens.csrfToken(forSession: session)), contentType: html)
        }
        router.get("/api/sources") { request, _ -> Response in
            guard let user = try await auth.caller(request) else { return unauthorized() }
            let sources = try await family.sources(visibleTo: user, counts: try await sourceCounts.snapshot()).map { source -> [String: Any] in
                ["label": source.label, "owner": source.owner ?? NSNull(), "files": source.files, "state": source.states]
            }
            return try json(["sources": sources])
        }
        router.get("/api/sources/:label/files") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return unauthorized() }
            let raw = try context.parameters.require("label")
            let query = request.uri.queryParameters
            let limit = query.get("limit").map { Int($0) ?? -1 } ?? Self.filesPage
            let after = query.get("after").map { Int64($0) ?? -1 } ?? 0
            guard (1...Self.filesPageMax).contains(limit), after >= 0 else {
                return FamilyShareRoutes.problem(.badRequest, "limit must be 1 to \(Self.filesPageMax) and after a file id")
            }
            guard let label = raw.removingPercentEncoding,
                  let files = try await family.files(ofSource: label, after: after, limit: limit, visibleTo: user) else {
                return notFound()
            }
            // The next page's URL while this one is full; null on the last page.
            let next = files.count == limit ? "/api/sources/\(BrowsePages.encode(label))/files?after=\(files.last!.id)&limit=\(limit)" : nil
            return Response.bytes(try StatusJSON.encoder.encode(FilesPage(label: label, files: files, next: next)), contentType: "application/json")
        }
        FamilyDownloadRoute.add(to: router, auth: auth, family: family, staging: staging)
        FamilyBrowseRoutes.add(to: router, auth: auth, family: family)
        FamilyDeleteRoutes.add(to: router, auth: auth, family: family)
        FamilyShareRoutes.add(to: router, auth: auth, family: family, staging: staging)
        FamilyRestoreRoutes.add(to: router, auth: auth, family: family, staging: staging)
        FamilyLiveRoutes.add(to: router, auth: auth, family: family)
    }

    /// `/logout` and `/logout-everywhere`: CSRF-checked, then the session (or all of the user's) deleted.
    static func endSessions(_ request: Request, auth: FamilyAuth, everywhere: Bool) async throws -> Response {
        var request = request
        let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
        guard let (user, session) = try await auth.sessionUser(request) else {
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        guard auth.csrfFits(form, session: session) else {
            return refusal(.forbidden, "The form expired or did not come from this site: reload the page and try again.")
        }
        if everywhere { try await auth.accounts.logoutEverywhere(user) } else { try await auth.accounts.logout(session: session) }
        var response = Response(status: .seeOther, headers: [.location: "/login"])
        response.setCookie(auth.cookie(FamilyAuth.sessionCookie, "", maxAge: 0))
        return response
    }

    static func refusal(_ status: HTTPResponse.Status, _ line: String, csrf: String? = nil) -> Response {
        var response = Response.text(AccountPages.login(csrf: csrf ?? "", problem: line), contentType: html)
        response.status = status
        return response
    }

    static func unauthorized() -> Response {
        var response = Response.text(#"{"error":"log in, or send Authorization: Bearer <personal token>"}"# + "\n", contentType: "application/json")
        response.status = .unauthorized
        response.headers[.wwwAuthenticate] = "Bearer realm=\"family archive\""
        return response
    }

    static func notFound() -> Response {
        var response = Response.text(#"{"error":"not found"}"# + "\n", contentType: "application/json")
        response.status = .notFound
        return response
    }

    /// One answer of `GET /api/sources/{label}/files`, encoded by Codable: a page of 1,000 files took JSONSerialization
    /// over dictionaries about 40 ms (docs/benchmarks.md). The keys and their order are those it gave (sorted); an
    /// absent download or next page is `null`, not left out.
    struct FilesPage: Encodable {
        let label: String
        let files: [FamilyFile]
        let next: String?

        struct Entry: Encodable {
            let file: FamilyFile
            enum Keys: String, CodingKey { case id, path, version, size, state, download }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(file.id, forKey: .id)
                try container.encode(file.path, forKey: .path)
                try container.encode(file.version, forKey: .version)
                try container.encode(file.size, forKey: .size)
                try container.encode(file.state, forKey: .state)
                try container.encode(file.downloadable ? "/files/\(file.id)/download" : nil, forKey: .download)
            }
        }

        enum Keys: String, CodingKey { case label, files, next }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(label, forKey: .label)
            try container.encode(files.map(Entry.init), forKey: .files)
            try container.encode(next, forKey: .next)
        }
    }

    static func json(_ object: [String: Any]) throws -> Response {
        Response.bytes(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), contentType: "application/json")
    }
}
