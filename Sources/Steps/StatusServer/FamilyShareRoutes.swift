import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import ObjectStore
import PipelineCore

/// Share links: `POST /files/{id}/share` (form field or query `days`, 1 to 7, default 7) makes a link
/// `/share/{token}` that anyone holding it may download the file with, without logging in, until it expires or is
/// revoked (`POST /files/{id}/shares/{share}/revoke`). The link is the server's, not a presigned S3 URL: a presigned
/// URL cannot be revoked (it works until it expires), and a `file://` store has none; the server checks the link on
/// every use and streams the file as `/files/{id}/download` does.
enum FamilyShareRoutes {
    static let maxDays = 7

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog, staging: (any ObjectStore)?) {
        router.post("/files/:id/share") { request, context -> Response in
            guard let id = Int64(try context.parameters.require("id")) else { return FamilyRoutes.notFound() }
            var request = request
            let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
            let daysText = form["days"] ?? request.uri.queryParameters.get("days") ?? String(maxDays)
            guard let days = Int(daysText), (1...maxDays).contains(days) else {
                return problem(.badRequest, "days must be a whole number from 1 to \(maxDays)")
            }
            let user: AccountUser
            let fromPage: Bool
            if request.headers[.authorization] != nil {
                guard let caller = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
                (user, fromPage) = (caller, false)
            } else {
                guard let (caller, session) = try await auth.sessionUser(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
                guard auth.csrfFits(form, session: session) else {
                    return FamilyRoutes.refusal(.forbidden, "The form expired or did not come from this site: reload the page and try again.")
                }
                (user, fromPage) = (caller, true)
            }
            let token = SecretTokens.generate(prefix: "shr_")
            switch try await family.createShare(fileID: id, tokenHash: SecretTokens.hash(token), lifetime: .seconds(days * 86_400), visibleTo: user) {
            case nil:
                return fromPage ? FamilyBrowseRoutes.notFoundPage() : FamilyRoutes.notFound()
            case .needsRestore:
                return problem(.conflict, "this file needs a restore before it can be shared")
            case .created(_, let expires)?:
                let link = "/share/\(token.revealed)"
                guard fromPage else { return try FamilyRoutes.json(["url": link, "expires_at": Format.timestamp(expires)]) }
                return Response.text(AccountPages.head + """
                    <title>Share link · family archive</title></head><body><h1>Share link</h1>
                    <p>Anyone holding this link can download the file until \(Format.timestamp(expires)), without logging in. Copy it now:
                    it is not shown again (only a hash of it is kept). You can revoke it on the file's page.</p>
                    <p><a id="share-link" href="\(link)">\(link)</a></p><p><a href="/files/\(id)">Back to the file</a></p></body></html>
                    """, contentType: FamilyRoutes.html)
            }
        }
        router.post("/files/:id/shares/:share/revoke") { request, context -> Response in
            guard let id = Int64(try context.parameters.require("id")), let share = Int64(try context.parameters.require("share")) else {
                return FamilyRoutes.notFound()
            }
            return try await FamilyDeleteRoutes.handle(request, auth: auth, back: "/files/\(id)") { user in
                try await family.revokeShare(share, fileID: id, visibleTo: user).map { $0 ? 1 : 0 }
            }
        }
        // Public: the token is the credential (256 random bits). Unknown, expired, revoked and deleted all answer
        // the same 404.
        router.get("/share/:token") { _, context -> Response in
            let token = try context.parameters.require("token")
            guard token.hasPrefix("shr_"), let download = try await family.sharedDownload(tokenHash: SecretTokens.hash(Secret(token))) else {
                return FamilyRoutes.notFound()
            }
            return try await FamilyDownloadRoute.stream(download, from: staging)
        }
    }

    static func problem(_ status: HTTPResponse.Status, _ line: String) -> Response {
        var response = Response.text("{\"error\":\"\(line)\"}\n", contentType: "application/json")
        response.status = status
        return response
    }
}
