import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import ObjectStore
import PipelineCore

/// Restores from the browser (issue 21): `POST /restores` asks for a file, a folder or a whole source; `GET /restores`
/// and `GET /restores/{id}` show them (`/api/restores…` as JSON); `GET /restores/{id}/download` gives the file, or a
/// folder as a streamed tar; `POST /restores/{id}/uncache` deletes the restored copy at once. The archiver does the
/// restoring (`BrowserRestoreCaching`); the server only records requests and streams what staging holds. Another
/// member's restore, source or file is 404, exactly like one that does not exist.
enum FamilyRestoreRoutes {
    static let maxDays = 30

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog, staging: (any ObjectStore)?) {
        router.post("/restores") { request, _ -> Response in
            let byToken = request.headers[.authorization] != nil
            var request = request
            let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
            let user: AccountUser
            if byToken {
                guard let caller = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
                user = caller
            } else {
                guard let (caller, session) = try await auth.sessionUser(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
                guard auth.csrfFits(form, session: session) else {
                    return FamilyRoutes.refusal(.forbidden, "The form expired or did not come from this site: reload the page and try again.")
                }
                user = caller
            }
            let asked: RestoreForm
            switch RestoreForm.parse(form) {
            case .success(let parsed): asked = parsed
            case .failure(let problem): return answer(.badRequest, problem.message, byToken: byToken)
            }
            let tier = asked.tier
            let outcome = try await family.requestRestore(
                sourceLabel: asked.label, fileID: asked.fileID, directory: asked.directory, tier: tier.rawValue, days: asked.days,
                expectedReady: { expectedRestoreTime(storageClass: $0, tier: tier) }, visibleTo: user)
            switch outcome {
            case nil:
                return byToken ? FamilyRoutes.notFound() : FamilyBrowseRoutes.notFoundPage()
            case .empty?:
                return answer(.conflict, "There is nothing to restore there: no file of that folder is left.", byToken: byToken)
            case .encrypted?:
                return answer(.conflict, "This source is encrypted with your own key, which the server never has: restore it with "
                    + "`uploader restore --identity` on a computer that holds the key.", byToken: byToken)
            case .created(let id)?:
                if byToken {
                    var response = try FamilyRoutes.json(["id": id, "url": "/restores/\(id)", "api": "/api/restores/\(id)"])
                    response.status = .created
                    return response
                }
                return Response(status: .seeOther, headers: [.location: "/restores/\(id)"])
            }
        }
        router.get("/restores") { request, _ -> Response in
            guard let (user, _) = try await auth.sessionUser(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
            return Response.text(RestorePages.list(try await family.restores(visibleTo: user)), contentType: FamilyRoutes.html)
        }
        router.get("/api/restores") { request, _ -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            return try FamilyRoutes.json(["restores": try await family.restores(visibleTo: user).map(json)])
        }
        router.get("/restores/:id") { request, context -> Response in
            guard let (user, session) = try await auth.sessionUser(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
            guard let id = Int64(try context.parameters.require("id")), let restore = try await family.restores(id: id, visibleTo: user).first,
                  let entries = try await family.restoreEntries(id: id, visibleTo: user) else { return FamilyBrowseRoutes.notFoundPage() }
            let page = RestorePages.page(restore, entries: entries, csrf: SecretTokens.csrfToken(forSession: session))
            return Response.text(page, contentType: FamilyRoutes.html)
        }
        router.get("/api/restores/:id") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let id = Int64(try context.parameters.require("id")), let restore = try await family.restores(id: id, visibleTo: user).first,
                  let entries = try await family.restoreEntries(id: id, visibleTo: user) else { return FamilyRoutes.notFound() }
            var object = json(restore)
            let notReadable = entries.filter { $0.download.read == nil }
            let waiting = restore.state == "restoring" ? notReadable.filter(\.waitsForArchive) : []
            object["files_ready"] = entries.count - notReadable.count
            object["files_waiting"] = waiting.count
            object["missing"] = notReadable.filter { !(restore.state == "restoring" && $0.waitsForArchive) }
                .map { ["path": $0.download.path, "reason": $0.missingReason ?? ""] }
            return try FamilyRoutes.json(object)
        }
        router.get("/restores/:id/download") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let id = Int64(try context.parameters.require("id")), let restore = try await family.restores(id: id, visibleTo: user).first,
                  let entries = try await family.restoreEntries(id: id, visibleTo: user) else { return FamilyRoutes.notFound() }
            guard restore.state == "ready", let staging else {
                return answer(.conflict, "Restore \(id) is \(restore.state), not ready to download.", byToken: true)
            }
            if restore.fileID != nil, let entry = entries.first {
                return try await FamilyDownloadRoute.stream(entry.download, from: staging)
            }
            let root = restore.sourceLabel.replacingOccurrences(of: "/", with: "_")
            let tar = TarDownloadStream(root: root, entries: entries, staging: staging)
            let selection = restore.directory.flatMap { $0.isEmpty ? nil : String($0.dropLast()).replacingOccurrences(of: "/", with: "-") }
            let name = ([root] + (selection.map { [$0] } ?? [])).joined(separator: "-") + ".tar"
            var headers: HTTPFields = [
                .contentType: "application/x-tar", .contentLength: String(tar.length),
                .contentDisposition: "attachment; filename*=UTF-8''\(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "restore.tar")",
            ]
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: tar))
        }
        router.post("/restores/:id/uncache") { request, context -> Response in
            guard let id = Int64(try context.parameters.require("id")) else { return FamilyRoutes.notFound() }
            return try await FamilyDeleteRoutes.handle(request, auth: auth, back: "/restores/\(id)") { user in
                guard let keys = try await family.uncache(restoreID: id, visibleTo: user) else {
                    // Not the caller's, or already ended: the page shows which.
                    return try await family.restores(id: id, visibleTo: user).isEmpty ? nil : 0
                }
                // Deleted now; whatever fails here the archiver's sweep deletes later.
                if let staging {
                    let failures = await staging.delete(keys: keys)
                    try await family.restoreCopies.copiesRemoved(keys.filter { failures[$0] == nil })
                }
                return keys.count
            }
        }
    }

    /// A refusal: a one-line JSON error for scripts, a page for the browser.
    static func answer(_ status: HTTPResponse.Status, _ line: String, byToken: Bool) -> Response {
        if byToken { return FamilyShareRoutes.problem(status, line.replacingOccurrences(of: "\"", with: "'")) }
        var response = Response.text(
            AccountPages.head + BrowsePages.style + "<title>Restore · family archive</title></head><body><p class=\"not-safe\" id=\"problem\">"
                + htmlEscape(line) + "</p><p><a href=\"/account\">Back</a></p></body></html>", contentType: FamilyRoutes.html)
        response.status = status
        return response
    }

    static func json(_ restore: FamilyRestore) -> [String: Any] {
        let iso = ISO8601DateFormatter()
        return [
            "id": restore.id, "source": restore.sourceLabel, "file_id": restore.fileID ?? NSNull(), "directory": restore.directory ?? NSNull(),
            "tier": restore.tier, "days": restore.days, "state": restore.state, "requested_by": restore.requestedBy,
            "requested_at": iso.string(from: restore.requestedAt), "expected_ready_at": iso.string(from: restore.expectedReadyAt),
            "ready_at": restore.readyAt.map(iso.string(from:)) ?? NSNull(), "cached_until": restore.cachedUntil.map(iso.string(from:)) ?? NSNull(),
            "error": restore.error ?? NSNull(), "files": restore.files, "bytes": restore.bytes, "objects": restore.objects,
            "objects_cached": restore.objectsCached, "download": restore.state == "ready" ? "/restores/\(restore.id)/download" : NSNull(),
        ]
    }
}

/// The fields of a restore request, checked.
struct RestoreForm {
    struct Problem: Error { let message: String }

    let label: String
    let fileID: Int64?
    let directory: String?
    let tier: RestoreTier
    let days: Int

    static func parse(_ form: [String: String]) -> Result<RestoreForm, Problem> {
        guard let label = form["source"], !label.isEmpty else { return .failure(Problem(message: "The request names no source (field source).")) }
        var fileID: Int64?
        var directory: String?
        if let file = form["file"], !file.isEmpty {
            guard let id = Int64(file) else { return .failure(Problem(message: "The file must be a file id, not '\(file.prefix(40))'.")) }
            fileID = id
        } else {
            var dir = form["dir"] ?? ""
            while dir.hasPrefix("/") { dir.removeFirst() }
            if !dir.isEmpty, !dir.hasSuffix("/") { dir += "/" }
            directory = dir
        }
        let tierName = form["tier"] ?? "Bulk"
        guard let tier = RestoreTier(rawValue: tierName), tier != .expedited else {
            return .failure(Problem(message: "The speed must be Bulk or Standard, not '\(tierName.prefix(40))'."))
        }
        let daysText = form["days"] ?? "7"
        guard let days = Int(daysText), (1...FamilyRestoreRoutes.maxDays).contains(days) else {
            return .failure(Problem(message: "Keep it for 1 to \(FamilyRestoreRoutes.maxDays) days, not '\(daysText.prefix(40))'."))
        }
        return .success(RestoreForm(label: label, fileID: fileID, directory: directory, tier: tier, days: days))
    }
}
