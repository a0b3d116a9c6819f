import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PipelineCore
import PostgresNIO

/// `GET /admin` (admins only; anyone else gets 404, as for a page that does not exist) with its forms:
/// `POST /admin/users/{name}/disable|enable`, `POST /admin/invitations`, `POST /admin/registration`, the maintenance
/// tasks' forms (AdminMaintenanceRoutes) and the recent logs (`?logs=warning` filters by level). And the two
/// ways in for a new person: `GET|POST /invite/{token}` (a one-time link) and `GET|POST /register` (only while an
/// admin has self-registration on).
enum AdminRoutes {
    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, client: PostgresClient, logger: Logger) {
        let accounts = auth.accounts
        @Sendable func adminPage(_ me: AccountUser, session: Secret, notice: String? = nil, logLevel: Logger.Level = .notice) async throws -> Response {
            let page = AdminPages.admin(
                me, users: try await accounts.catalog.listUsers(), registration: try await accounts.selfRegistration(),
                overview: try await AdminCatalog(client: client, logger: logger).overview(), csrf: SecretTokens.csrfToken(forSession: session), notice: notice,
                maintenance: try await MaintenanceCatalog(client: client, logger: logger).tasks(),
                logs: (try await WorkerLogCatalog(client: client, logger: logger).newest(limit: 200, minimum: logLevel), logLevel))
            return Response.text(page, contentType: FamilyRoutes.html)
        }
        /// The signed-in admin and the form, CSRF-checked; nil answers are the response to give instead.
        @Sendable func adminForm(_ request: Request) async throws -> (AccountUser, Secret, [String: String])? {
            var request = request
            let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
            guard let (user, session) = try await auth.sessionUser(request), user.role == .admin, auth.csrfFits(form, session: session) else { return nil }
            return (user, session, form)
        }

        router.get("/admin") { request, _ -> Response in
            guard let (user, session) = try await auth.sessionUser(request), user.role == .admin else { return FamilyBrowseRoutes.notFoundPage() }
            let level = request.uri.queryParameters.get("logs").flatMap { Logger.Level(rawValue: $0) }.flatMap { WorkerLogCatalog.levels.contains($0) ? $0 : nil }
            return try await adminPage(user, session: session, logLevel: level ?? .notice)
        }
        AdminMaintenanceRoutes.add(to: router, client: client, logger: logger, adminForm: adminForm) { user, session, notice in
            try await adminPage(user, session: session, notice: notice)
        }
        for (suffix, disabled) in [("disable", true), ("enable", false)] {
            router.post("/admin/users/:name/\(suffix)") { request, context -> Response in
                guard let (user, _, _) = try await adminForm(request) else { return FamilyBrowseRoutes.notFoundPage() }
                guard let name = try context.parameters.require("name").removingPercentEncoding, name != user.name else {
                    return FamilyBrowseRoutes.notFoundPage()
                }
                do { try await accounts.setDisabled(name: name, disabled) } catch is AccountError { return FamilyBrowseRoutes.notFoundPage() }
                return Response(status: .seeOther, headers: [.location: "/admin"])
            }
        }
        router.post("/admin/invitations") { request, _ -> Response in
            guard let (user, session, form) = try await adminForm(request) else { return FamilyBrowseRoutes.notFoundPage() }
            guard let role = AccountRole(rawValue: form["role"] ?? "member"), let days = Int(form["days"] ?? "7"), (1...30).contains(days) else {
                return try await adminPage(user, session: session, notice: "<p class=\"problem\">The role must be member or admin, and the days 1 to 30.</p>")
            }
            let (token, expires) = try await accounts.invite(role: role, by: user, lifetime: .seconds(days * 86_400))
            let link = "/invite/\(token.revealed)"
            return try await adminPage(user, session: session, notice: """
                <p class="safe">A one-time \(role.rawValue) invitation, valid until \(Format.timestamp(expires)). Send this link (this server's
                address, then the path); it is shown only now: <a id="invitation-link" href="\(link)">\(link)</a></p>
                """)
        }
        router.post("/admin/files/:id/retry") { request, context -> Response in
            guard let (user, session, _) = try await adminForm(request), let id = Int64(try context.parameters.require("id")) else {
                return FamilyBrowseRoutes.notFoundPage()
            }
            let notice: String
            switch try await AdminCatalog(client: client, logger: logger).retry(fileID: id) {
            case .queued(let state): notice = "<p class=\"safe\" id=\"retry-notice\">File \(id) is queued again (\(state)).</p>"
            case .notFailed: notice = "<p class=\"problem\" id=\"retry-notice\">File \(id) is not a failed file.</p>"
            case .noStagedCopy:
                notice = "<p class=\"problem\" id=\"retry-notice\">File \(id) has no copy in staging to try again with: upload its source again.</p>"
            }
            return try await adminPage(user, session: session, notice: notice)
        }
        router.post("/admin/registration") { request, _ -> Response in
            guard let (_, _, form) = try await adminForm(request), let value = form["value"], ["on", "off"].contains(value) else {
                return FamilyBrowseRoutes.notFoundPage()
            }
            try await accounts.setSelfRegistration(value == "on")
            return Response(status: .seeOther, headers: [.location: "/admin"])
        }

        router.get("/invite/:token") { _, context -> Response in
            let token = try context.parameters.require("token")
            guard try await accounts.invitationRole(Secret(token)) != nil else { return FamilyBrowseRoutes.notFoundPage() }
            return newAccountForm(title: "You are invited to the family archive", action: "/invite/\(token)", auth: auth)
        }
        router.post("/invite/:token") { request, context -> Response in
            let token = try context.parameters.require("token")
            return try await makeAccount(request, auth: auth, title: "You are invited to the family archive", action: "/invite/\(token)") { name, password in
                try await accounts.acceptInvitation(Secret(token), name: name, password: password)
            }
        }
        router.get("/register") { _, _ -> Response in
            guard try await accounts.selfRegistration() else { return FamilyBrowseRoutes.notFoundPage() }
            return newAccountForm(title: "Make an account", action: "/register", auth: auth)
        }
        router.post("/register") { request, _ -> Response in
            guard try await accounts.selfRegistration() else { return FamilyBrowseRoutes.notFoundPage() }
            return try await makeAccount(request, auth: auth, title: "Make an account", action: "/register") { name, password in
                try await accounts.register(name: name, password: password)
            }
        }
    }

    /// The new-account form with a fresh double-submit CSRF cookie, as the login form has.
    static func newAccountForm(title: String, action: String, auth: FamilyAuth, problem: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let csrf = SecretTokens.generate().revealed
        var response = Response.text(AdminPages.newAccount(title: title, action: action, csrf: csrf, problem: problem), contentType: FamilyRoutes.html)
        response.status = status
        response.setCookie(auth.cookie(FamilyAuth.loginCSRFCookie, csrf, maxAge: 3600, sameSite: .strict))
        return response
    }

    /// Checks the form's CSRF pair, makes the account, and signs the person in (303 to /account); a refused name or
    /// password shows the form again with the one-line reason.
    static func makeAccount(
        _ request: Request, auth: FamilyAuth, title: String, action: String,
        _ make: (String, Secret) async throws -> (AccountUser, session: Secret)
    ) async throws -> Response {
        var request = request
        let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
        let cookieCSRF = request.cookies[FamilyAuth.loginCSRFCookie]?.value ?? ""
        guard !cookieCSRF.isEmpty, SecretTokens.constantTimeEqual(form[FamilyAuth.csrfField] ?? "", cookieCSRF) else {
            return newAccountForm(title: title, action: action, auth: auth, problem: "The form expired or did not come from this site: try again.", status: .forbidden)
        }
        do {
            let (_, session) = try await make(form["username"] ?? "", Secret(form["password"] ?? ""))
            var response = Response(status: .seeOther, headers: [.location: "/account"])
            response.setCookie(auth.cookie(FamilyAuth.sessionCookie, session.revealed, maxAge: Int(auth.accounts.settings.sessionLifetime.components.seconds)))
            response.setCookie(auth.cookie(FamilyAuth.loginCSRFCookie, "", maxAge: 0, sameSite: .strict))
            return response
        } catch let error as AccountError where error.code == .invalidInvitation {
            return FamilyBrowseRoutes.notFoundPage()
        } catch let error as AccountError {
            return newAccountForm(title: title, action: action, auth: auth, problem: error.message, status: .badRequest)
        }
    }
}
