import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Alerts
import SystemIO
import Catalog

/// With a token, every route but `/healthz` and the family routes (which check their own callers) needs `Authorization: Bearer <token>` or the session
/// cookie the login form sets.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: Secret
    let session: String

    init(token: Secret) {
        self.token = token
        self.session = StatusAuth.sessionValue(for: token)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        // The family routes check their callers themselves (personal tokens and sessions, FamilyRoutes).
        if path == "/healthz" || FamilyRoutes.isFamilyPath(path) { return try await next(request, context) }
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer",
                StatusAuth.constantTimeEqual(String(parts[1]).trimmingCharacters(in: .whitespaces), token.revealed)
            {
                return try await next(request, context)
            }
        }
        if let cookie = request.cookies[StatusAuth.cookieName], StatusAuth.constantTimeEqual(cookie.value, session) {
            return try await next(request, context)
        }
        let wantsHTML = (request.headers[.accept] ?? "").contains("text/html")
        var response =
            wantsHTML
            ? Response.text(StatusPage.loginPage(refused: false), contentType: "text/html; charset=utf-8")
            : Response.text("unauthorized: send Authorization: Bearer <BACKUP_STATUS_TOKEN>\n", contentType: "text/plain; charset=utf-8")
        response.status = .unauthorized
        response.headers[.wwwAuthenticate] = "Bearer realm=\"backup status\""
        return response
    }
}
