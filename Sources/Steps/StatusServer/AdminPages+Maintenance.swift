import Catalog
import Foundation
import Logging
import PipelineCore

/// The admin page's maintenance tasks (schedule, last run, forms) and recent logs sections.
extension AdminPages {
    typealias FormMaker = (_ action: String, _ label: String, _ id: String, _ fields: String) -> String

    static func maintenance(_ tasks: [MaintenanceTaskRecord], form: FormMaker) -> String {
        let rows = tasks.map { task in
            let name = task.name.rawValue
            let next = task.running ? "running now" : task.runRequested ? "after the next batch (asked)" : task.enabled ? Format.timestamp(task.nextRunAt) : "— (disabled)"
            let last = task.lastStartedAt.map { started in
                "started \(Format.timestamp(started))" + (task.lastFinishedAt.flatMap { $0 >= started ? "<br>finished \(Format.timestamp($0))" : nil } ?? "")
            } ?? "never"
            let outcome = task.lastOutcome.map { "<span class=\"\($0 == "ok" ? "safe" : "not-safe")\">\($0)</span>" } ?? ""
            let detail = [task.lastResult.map(htmlEscape), task.lastError.map { "<strong>error:</strong> " + htmlEscape($0) }].compactMap { $0 }.joined(separator: "<br>")
            let parameters = task.parameters.displayText(for: task.name)
            return "<tr class=\"task\" id=\"task-\(name)\"><td><strong>\(name)</strong><br><small>\(htmlEscape(task.name.summary))</small></td>"
                + "<td>\(MaintenanceSchedule.text(everySeconds: task.everySeconds))</td><td>\(task.enabled ? "on" : "off")</td>"
                + "<td>\(htmlEscape(parameters.isEmpty ? "—" : parameters))</td><td>\(last)</td><td>\(outcome)</td><td class=\"result\">\(detail)</td><td>\(next)</td>"
                + "<td>\(form("/admin/maintenance/\(name)/run", "Run now", "run-\(name)", ""))</td></tr>"
        }.joined()
        let forms = tasks.map { task in
            let name = task.name.rawValue
            let (value, unit) = intervalFields(task.everySeconds)
            let units = ["minutes", "hours", "days"].map { "<option value=\"\($0)\"\($0 == unit ? " selected" : "")>\($0)</option>" }.joined()
            var fields = "<label>\(name): every <input name=\"every\" type=\"number\" min=\"1\" value=\"\(value)\" style=\"width:5rem\"></label>"
                + "<select name=\"unit\">\(units)</select> <label><input type=\"checkbox\" name=\"enabled\" value=\"on\"\(task.enabled ? " checked" : "")> enabled</label> "
            switch task.name {
            case .verifySample:
                let percent = JSONValue.number(task.parameters.percent ?? MaintenanceParameters.defaultPercent).displayText
                fields += "<label>percent <input name=\"percent\" value=\"\(percent)\" style=\"width:4rem\"></label> "
            case .audit:
                fields += "<label>source (empty: all) <input name=\"source\" value=\"\(htmlEscape(task.parameters.sourceLabel ?? ""))\"></label> "
            case .exportCatalog, .refreshRestoreStatus:
                break
            }
            return "<p>" + form("/admin/maintenance/\(name)", "Save", "save-\(name)", fields) + "</p>"
        }.joined()
        return """
            <h2 id="maintenance">Maintenance</h2>
            <p>The archivers run these between batches, one worker per task at a time. <em>Run now</em> runs a task after the
            archiver's current batch, also when it is off.</p>
            <table id="maintenance-tasks"><tr><th>Task</th><th>Schedule</th><th>Enabled</th><th>Parameters</th><th>Last run</th><th>Outcome</th>
            <th>Result</th><th>Next run</th><th></th></tr>\(rows)</table>
            \(forms)
            """
    }

    /// The newest lines (notice and above, secrets redacted when they were written), with a level filter.
    static func logs(_ entries: [WorkerLogEntry], minimum: Logger.Level) -> String {
        let options = WorkerLogCatalog.levels.map { level in
            "<option value=\"\(level.rawValue)\"\(level == minimum ? " selected" : "")>\(level.rawValue) and above</option>"
        }.joined()
        let rows = entries.map { entry in
            let metadata = entry.metadataJSON == "{}" ? "" : "<br><small><code>\(htmlEscape(entry.metadataJSON))</code></small>"
            return "<tr class=\"log \(entry.level.rawValue)\"><td>\(Format.timestamp(entry.at))</td><td>\(entry.level.rawValue)</td>"
                + "<td>\(htmlEscape(entry.program))<br><small>\(htmlEscape(entry.worker))</small></td><td>\(htmlEscape(entry.message))\(metadata)</td></tr>"
        }.joined()
        return """
            <h2 id="logs">Recent logs</h2>
            <form method="get" action="/admin#logs" class="inline"><label>Show <select name="logs">\(options)</select></label>
            <button type="submit" id="filter-logs">Filter</button></form>
            <p>The newest \(entries.count) lines of the workers and this server (notice and above; the newest
            \(WorkerLogCatalog.keptLines) and at most \(WorkerLogCatalog.keptDays) days are kept).</p>
            <table id="logs-table"><tr><th>When</th><th>Level</th><th>Program</th><th>Message</th></tr>\(rows)</table>
            """
    }

    /// The form's number and unit for an interval: the largest unit that divides it.
    static func intervalFields(_ seconds: Int) -> (Int, String) {
        seconds % 86_400 == 0 ? (seconds / 86_400, "days") : seconds % 3600 == 0 ? (seconds / 3600, "hours") : (max(1, seconds / 60), "minutes")
    }
}
