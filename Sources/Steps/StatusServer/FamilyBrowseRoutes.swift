import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import PipelineCore

/// `GET /sources/{label}` (the folder tree with `?dir=`, a search with `?q=`, and the "safe to destroy?" verdict),
/// `GET /files/{id}` (one file's details) and `GET /api/files/{id}` (the same as JSON). Like every family route: the
/// caller's own sources only (an admin's: all), and what they may not see is 404 exactly like what does not exist.
enum FamilyBrowseRoutes {
    static let searchLimit = 500

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog) {
        router.get("/sources/:label") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
            guard let label = try context.parameters.require("label").removingPercentEncoding,
                let overview = try await family.overview(ofSource: label, visibleTo: user)
            else { return notFoundPage() }
            let query = request.uri.queryParameters.get("q").flatMap { $0.isEmpty ? nil : $0 }
            var dir = request.uri.queryParameters.get("dir") ?? ""
            while dir.hasPrefix("/") { dir.removeFirst() }
            if !dir.isEmpty, !dir.hasSuffix("/") { dir += "/" }
            var results: [FamilyListedFile]?
            var listing: (folders: [FamilyListedFolder], files: [FamilyListedFile])?
            if let query {
                results = try await family.search(sourceID: overview.id, text: query, limit: searchLimit)
            } else {
                listing = try await family.folder(sourceID: overview.id, prefix: dir)
            }
            let actions = BrowsePages.Actions(
                csrf: try await auth.sessionUser(request).map { SecretTokens.csrfToken(forSession: $0.1) },
                pending: try await family.pendingDeletes(sourceID: overview.id))
            return Response.text(
                BrowsePages.source(overview, dir: dir, listing: listing, query: query, results: results, resultLimit: searchLimit, actions: actions),
                contentType: FamilyRoutes.html)
        }
        router.get("/files/:id") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
            guard let id = Int64(try context.parameters.require("id")), let file = try await family.fileDetails(id: id, visibleTo: user) else {
                return notFoundPage()
            }
            let pending = try await family.pendingDelete(fileID: id)
            let actions = BrowsePages.Actions(
                csrf: try await auth.sessionUser(request).map { SecretTokens.csrfToken(forSession: $0.1) }, pending: pending.map { [id: $0] } ?? [:],
                shares: try await family.shares(fileID: id, visibleTo: user) ?? [])
            return Response.text(BrowsePages.file(file, actions: actions), contentType: FamilyRoutes.html)
        }
        router.get("/api/files/:id") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let id = Int64(try context.parameters.require("id")), let file = try await family.fileDetails(id: id, visibleTo: user) else {
                return FamilyRoutes.notFound()
            }
            let object: [String: Any?] = [
                "id": file.id, "source": file.sourceLabel, "path": file.path, "version": file.version, "kind": file.kind, "size": file.size,
                "hash": file.hash, "state": file.effectiveState, "row_state": file.state, "error": file.error, "storage": file.storage,
                "archive_key": file.archiveKey, "bundle_id": file.bundleID, "bundle_offset": file.bundleOffset, "stored_size": file.storedSize,
                "tier": file.tier, "encrypted": file.encrypted, "duplicate_of": file.duplicateOf, "transcode_id": file.transcodeID,
                "original_id": file.originalID, "versions": file.versions.map { ["id": $0.id, "version": $0.version, "state": $0.state] as [String: Any] },
                "download": file.downloadable ? "/files/\(file.id)/download" : nil,
                "delete_requested_at": try await family.pendingDelete(fileID: id).map { Format.timestamp($0) },
            ]
            return try FamilyRoutes.json(object.mapValues { $0 ?? NSNull() })
        }
    }

    static func notFoundPage() -> Response {
        var response = Response.text(
            AccountPages.head + "<title>Not found · family archive</title></head><body><h1>Not found</h1><p><a href=\"/account\">Your sources</a></p></body></html>",
            contentType: FamilyRoutes.html)
        response.status = .notFound
        return response
    }
}
