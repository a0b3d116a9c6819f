import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import PipelineCore

/// `POST /files/{id}/delete`, `POST /files/{id}/undo-delete`, `POST /sources/{label}/delete` and
/// `POST /sources/{label}/undo-delete`: a delete request through `ObjectStorageDeleteLog` (carried out by the archiver
/// after its grace period) and its undo until then. From the pages (session cookie) the form's CSRF field is
/// required and the answer is 303 back to the page; with a personal token the answer is JSON.
enum FamilyDeleteRoutes {
    enum Action { case delete, undo }

    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog) {
        for (suffix, action) in [("delete", Action.delete), ("undo-delete", .undo)] {
            router.post("/files/:id/\(suffix)") { request, context -> Response in
                guard let id = Int64(try context.parameters.require("id")) else { return FamilyRoutes.notFound() }
                return try await handle(request, auth: auth, back: "/files/\(id)") { user in
                    action == .delete
                        ? try await family.requestDelete(fileID: id, visibleTo: user)
                        : try await family.undoDelete(fileID: id, visibleTo: user)
                }
            }
            router.post("/sources/:label/\(suffix)") { request, context -> Response in
                guard let label = try context.parameters.require("label").removingPercentEncoding else { return FamilyRoutes.notFound() }
                return try await handle(request, auth: auth, back: BrowsePages.sourceLink(label)) { user in
                    action == .delete
                        ? try await family.requestDelete(sourceLabel: label, visibleTo: user)
                        : try await family.undoDelete(sourceLabel: label, visibleTo: user)
                }
            }
        }
    }

    /// Authenticates (a token; or a session with the form's CSRF field), runs `change`, and answers.
    static func handle(_ request: Request, auth: FamilyAuth, back: String, _ change: (AccountUser) async throws -> Int?) async throws -> Response {
        if request.headers[.authorization] != nil {
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let count = try await change(user) else { return FamilyRoutes.notFound() }
            return try FamilyRoutes.json(["changed": count])
        }
        var request = request
        let form = FormDecoding.parse(String(buffer: try await request.collectBody(upTo: 8192)))
        guard let (user, session) = try await auth.sessionUser(request) else { return Response(status: .seeOther, headers: [.location: "/login"]) }
        guard auth.csrfFits(form, session: session) else {
            return FamilyRoutes.refusal(.forbidden, "The form expired or did not come from this site: reload the page and try again.")
        }
        guard try await change(user) != nil else { return FamilyBrowseRoutes.notFoundPage() }
        return Response(status: .seeOther, headers: [.location: back])
    }
}
