import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /upload`: the page where a member picks files or a folder, names the source and uploads (the script is
/// `GET /upload.js`, `UploadScript`). Plain HTML; the only script is the page's own, from this server.
enum UploadPage {
    /// The page's Content-Security-Policy: the status pages' (no script at all) plus this server's own script and
    /// requests to itself.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog, uploadsEnabled: Bool, chunkBytes: Int) {
        router.get("/upload") { request, _ -> Response in
            guard let (user, session) = try await auth.sessionUser(request) else {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            let labels = try await family.ownedLabels(of: user)
            var response = Response.text(
                render(user: user, csrf: SecretTokens.csrfToken(forSession: session), labels: labels, enabled: uploadsEnabled, chunkBytes: chunkBytes),
                contentType: FamilyRoutes.html)
            response.headers[.contentSecurityPolicy] = contentSecurityPolicy
            return response
        }
        router.get("/upload.js") { _, _ -> Response in
            var response = Response.text(UploadScript.source, contentType: "text/javascript; charset=utf-8")
            response.headers[.contentSecurityPolicy] = contentSecurityPolicy
            return response
        }
    }

    static func render(user: AccountUser, csrf: String, labels: [String], enabled: Bool, chunkBytes: Int) -> String {
        let options = labels.map { "<option value=\"\(htmlEscape($0))\">" }.joined()
        let disabled = enabled ? "" : "<p class=\"problem\" id=\"uploads-off\">This server takes no uploads (no upload directory or staging store).</p>"
        return AccountPages.head + """
            <meta name="csrf-token" content="\(htmlEscape(csrf))">
            <title>Upload · family archive</title>
            <style>.file{margin:.4rem 0}.file progress{width:100%}.small{color:#555;font-size:.9rem}</style>
            </head><body><h1>Upload</h1>
            <p>Signed in as <strong>\(htmlEscape(user.name))</strong>. <a href="/account">Your sources</a></p>\(disabled)
            <form id="upload-form" data-chunk-bytes="\(chunkBytes)">
            <label>Source name (new, or one of yours) <input name="source" id="source" list="your-sources" required maxlength="200" autocomplete="off"></label>
            <datalist id="your-sources">\(options)</datalist>
            <label>Notes (optional) <input name="notes" id="notes" maxlength="4000"></label>
            <label>Files <input type="file" id="files" multiple></label>
            <label>Or a folder <input type="file" id="folder" multiple webkitdirectory></label>
            <button type="submit" id="upload-button">Upload</button>
            </form>
            <p id="upload-status" class="small" aria-live="polite"></p>
            <div id="upload-list"></div>
            <p class="small">Large files go in pieces of \(chunkBytes >> 20) MiB: if the connection drops, the upload goes on from
            what the server received. Choosing the same files again after a reload continues them.</p>
            <script src="/upload.js"></script>
            </body></html>
            """
    }
}
