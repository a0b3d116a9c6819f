import Catalog
import Foundation
import Logging
import PipelineCore

/// The admin page and the invitation/registration forms: plain HTML, no script.
enum AdminPages {
    static func admin(
        _ me: AccountUser, users: [AccountListing], registration: Bool, overview: AdminOverview, csrf: String, notice: String? = nil,
        maintenance: [MaintenanceTaskRecord], logs: (entries: [WorkerLogEntry], minimum: Logger.Level)
    ) -> String {
        let form = { (action: String, label: String, id: String, fields: String) in
            "<form method=\"post\" action=\"\(action)\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(htmlEscape(csrf))\">\(fields)"
                + "<button type=\"submit\" id=\"\(id)\">\(htmlEscape(label))</button></form>"
        }
        let userRows = users.map { listing in
            let name = listing.user.name
            let button = listing.user.id == me.id ? "(you)"
                : listing.disabled ? form("/admin/users/\(BrowsePages.encode(name))/enable", "Enable", "enable-\(name)", "")
                : form("/admin/users/\(BrowsePages.encode(name))/disable", "Disable", "disable-\(name)", "")
            return "<tr class=\"user\"><td>\(htmlEscape(name))</td><td>\(listing.user.role.rawValue)</td><td>\(Format.timestamp(listing.createdAt))</td>"
                + "<td>\(listing.disabled ? "disabled" : "active")</td><td>\(listing.liveSessions)</td><td>\(listing.liveTokens)</td><td>\(button)</td></tr>"
        }.joined()
        let workerRows = overview.workers.map { worker in
            let state = worker.stoppedAt.map { "stopped \(Format.timestamp($0))" + (worker.stopReason.map { ": " + htmlEscape($0) } ?? "") }
                ?? "alive, last heartbeat \(Format.timestamp(worker.heartbeatAt))"
            let job = worker.leased == 0 ? "idle" : "\(worker.leased) file\(worker.leased == 1 ? "" : "s"): \(htmlEscape(worker.currentPath ?? ""))"
            return "<tr><td>\(htmlEscape(worker.role))</td><td>\(htmlEscape(worker.host))</td><td>\(state)</td><td>\(job)</td></tr>"
        }.joined()
        let failedRows = overview.failed.map { file in
            let retry = file.state == "failed" ? form("/admin/files/\(file.id)/retry", "Retry", "retry-\(file.id)", "") : ""
            return "<tr><td><a href=\"/files/\(file.id)\">\(htmlEscape(file.source)): \(htmlEscape(file.path))</a></td><td>\(file.state)</td>"
                + "<td>\(htmlEscape(file.error ?? ""))</td><td>\(Format.timestamp(file.updatedAt))</td><td>\(retry)</td></tr>"
        }.joined()
        let alertRows = overview.alerts.map { alert in
            let delivery = alert.deliveredAt.map { "delivered \(Format.timestamp($0))" } ?? "not delivered" + (alert.lastError.map { ": " + htmlEscape($0) } ?? "")
            return "<tr><td>\(Format.timestamp(alert.createdAt))</td><td>\(htmlEscape(alert.kind))</td><td>\(htmlEscape(alert.message))</td><td>\(delivery)</td></tr>"
        }.joined()
        let role = "<select name=\"role\"><option value=\"member\">member</option><option value=\"admin\">admin</option></select>"
        let days = "<input name=\"days\" type=\"number\" min=\"1\" max=\"30\" value=\"7\" style=\"width:4rem\">"
        return AccountPages.head + BrowsePages.style + """
            <title>Admin · family archive</title></head><body><p><a href="/account">← your sources</a></p><h1>Admin</h1>
            \(notice ?? "")
            <h2>Users</h2><table id="users"><tr><th>Name</th><th>Role</th><th>Since</th><th></th><th>Sessions</th><th>Tokens</th><th></th></tr>\(userRows)</table>
            <p>\(form("/admin/invitations", "Make an invitation link", "invite", "<label>Invite a \(role) for \(days) days</label> "))</p>
            <p id="registration">Self-registration is <strong>\(registration ? "on" : "off")</strong>: \(registration
                ? "anyone who reaches this server can make a member account at /register. " + form("/admin/registration", "Turn it off", "registration-off", "<input type=\"hidden\" name=\"value\" value=\"off\">")
                : "new people need an invitation. " + form("/admin/registration", "Turn it on", "registration-on", "<input type=\"hidden\" name=\"value\" value=\"on\">"))</p>
            <h2>Workers</h2><table id="workers"><tr><th>Role</th><th>Host</th><th>State</th><th>Now</th></tr>\(workerRows)</table>
            <h2>Failed and unreadable files (\(overview.failedTotal))</h2>
            <p><em>Retry</em> queues a failed file again (its attempts reset) when its bytes are still in staging; an unreadable
            file, or one whose staging copy is gone, needs its source uploaded again.</p>
            <table id="failed"><tr><th>File</th><th>State</th><th>Error</th><th>When</th><th></th></tr>\(failedRows)</table>
            <h2>Alerts</h2><table id="alerts"><tr><th>When</th><th>Kind</th><th>Message</th><th>Delivery</th></tr>\(alertRows)</table>
            \(Self.maintenance(maintenance, form: form))
            \(Self.logs(logs.entries, minimum: logs.minimum))
            </body></html>
            """
    }

    /// The form that makes an account: from an invitation (`action` is its link) or by self-registration.
    static func newAccount(title: String, action: String, csrf: String, problem: String? = nil) -> String {
        let line = problem.map { "<p class=\"problem\" id=\"account-problem\">\(htmlEscape($0))</p>" } ?? ""
        return AccountPages.head + """
            <title>\(htmlEscape(title)) · family archive</title></head><body><h1>\(htmlEscape(title))</h1>\(line)
            <form method="post" action="\(action)" id="account-form">
            <input type="hidden" name="csrf" value="\(htmlEscape(csrf))">
            <label>User name (letters, digits, '.', '_', '-') <input name="username" autocomplete="username" required autofocus></label>
            <label>Password (at least 10 characters) <input name="password" type="password" autocomplete="new-password" required></label>
            <button type="submit">Make my account</button></form></body></html>
            """
    }
}
