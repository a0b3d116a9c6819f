import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import PipelineCore

/// Who is calling the family routes: a personal API token (`Authorization: Bearer pbk_…`) or the session cookie the
/// login form sets. Neither is ever logged; the catalog holds only their hashes.
struct FamilyAuth: Sendable {
    static let sessionCookie = "backup_session"
    /// The login form's CSRF value before there is a session (double submit: cookie and form field must match).
    static let loginCSRFCookie = "backup_login_csrf"
    static let csrfField = "csrf"

    let accounts: AccountService
    let behindTLSProxy: Bool
    /// `BACKUP_STATUS_CLIENT_IP_HEADER`: a header the proxy overwrites with the client's address.
    var clientAddressHeader: String? = nil

    /// The session id from the cookie, if any.
    func session(_ request: Request) -> Secret? {
        guard let value = request.cookies[Self.sessionCookie]?.value, !value.isEmpty else { return nil }
        return Secret(value)
    }

    /// The caller, or nil (then the route answers 401).
    func caller(_ request: Request) async throws -> AccountUser? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            return try await accounts.user(apiToken: Secret(String(parts[1]).trimmingCharacters(in: .whitespaces)))
        }
        guard let session = session(request) else { return nil }
        return try await accounts.user(session: session)
    }

    /// The session's user and the session id, for the browser pages.
    func sessionUser(_ request: Request) async throws -> (AccountUser, Secret)? {
        guard let session = session(request), let user = try await accounts.user(session: session) else { return nil }
        return (user, session)
    }

    /// Whether the form's CSRF field belongs to this session.
    func csrfFits(_ form: [String: String], session: Secret) -> Bool {
        guard let sent = form[Self.csrfField], !sent.isEmpty else { return false }
        return SecretTokens.constantTimeEqual(sent, SecretTokens.csrfToken(forSession: session))
    }

    /// The client's address: the header the proxy overwrites (`clientAddressHeader`), else behind the TLS proxy the
    /// address it appended to `X-Forwarded-For`, else the peer. Only a header the proxy sets itself can be trusted: a
    /// client may send any `X-Forwarded-For` it likes, and a proxy that does not append to it would pass that on.
    func clientAddress(_ request: Request, context: StatusRequestContext) -> String? {
        if let clientAddressHeader, let name = HTTPField.Name(clientAddressHeader),
            let value = request.headers[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty
        {
            return value
        }
        if behindTLSProxy, let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!],
            let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty
        {
            return last
        }
        return context.remoteAddress?.ipAddress
    }

    func cookie(_ name: String, _ value: String, maxAge: Int, sameSite: Cookie.SameSite = .lax) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: behindTLSProxy, httpOnly: true, sameSite: sameSite)
    }
}
