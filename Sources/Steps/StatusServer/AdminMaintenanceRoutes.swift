import Accounts
import Catalog
import Foundation
import Hummingbird
import Logging
import PipelineCore
import PostgresNIO

/// `POST /admin/maintenance/{name}` (schedule, enabled, parameters) and `POST /admin/maintenance/{name}/run` ("Run
/// now"), admins only and CSRF-checked like every admin form. A refused value shows the page again with one line.
enum AdminMaintenanceRoutes {
    typealias AdminForm = @Sendable (Request) async throws -> (AccountUser, Secret, [String: String])?
    typealias AdminPage = @Sendable (AccountUser, Secret, String?) async throws -> Response

    static let unitSeconds = ["minutes": 60, "hours": 3600, "days": 86_400]

    static func add(to router: Router<StatusRequestContext>, client: PostgresClient, logger: Logger, adminForm: @escaping AdminForm, adminPage: @escaping AdminPage) {
        let catalog = MaintenanceCatalog(client: client, logger: logger)
        router.post("/admin/maintenance/:name") { request, context -> Response in
            guard let (user, session, form) = try await adminForm(request),
                let name = MaintenanceTaskName(rawValue: try context.parameters.require("name"))
            else { return FamilyBrowseRoutes.notFoundPage() }
            do {
                let (every, parameters) = try checked(name, form)
                try await catalog.update(name, everySeconds: every, enabled: form["enabled"] == "on", parameters: parameters)
            } catch let error as MaintenanceError {
                var page = try await adminPage(user, session, "<p class=\"problem\" id=\"maintenance-notice\">\(htmlEscape(error.message))</p>")
                page.status = .badRequest
                return page
            }
            return Response(status: .seeOther, headers: [.location: "/admin#maintenance"])
        }
        router.post("/admin/maintenance/:name/run") { request, context -> Response in
            guard try await adminForm(request) != nil, let name = MaintenanceTaskName(rawValue: try context.parameters.require("name")) else {
                return FamilyBrowseRoutes.notFoundPage()
            }
            try await catalog.requestRun(name)
            return Response(status: .seeOther, headers: [.location: "/admin#maintenance"])
        }
    }

    /// The interval in seconds and the task's parameters from the form, checked (the source's existence is checked by
    /// the catalog when it stores them).
    static func checked(_ name: MaintenanceTaskName, _ form: [String: String]) throws(MaintenanceError) -> (Int, MaintenanceParameters) {
        guard let count = Int(form["every"] ?? ""), let unit = unitSeconds[form["unit"] ?? ""], count > 0, count <= MaintenanceSchedule.longest else {
            throw MaintenanceError(.invalidSetting, "the interval must be a whole number of minutes, hours or days")
        }
        let every = try MaintenanceSchedule.checked(everySeconds: count * unit)
        var percent: Double?
        if name == .verifySample {
            guard let value = Double(form["percent"]?.trimmingCharacters(in: .whitespaces) ?? "") else {
                throw MaintenanceError(.invalidSetting, "verify-sample: percent must be a number above 0 and at most 100")
            }
            percent = value
        }
        return (every, try MaintenanceParameters.checked(name, percent: percent, sourceLabel: name == .audit ? form["source"] : nil))
    }
}
