import Catalog
import Foundation
import PipelineCore

/// The restore form, the list of restores and one restore's page: server-rendered, no script (a restore that is
/// still in progress reloads itself every minute).
enum RestorePages {
    /// What a tier costs and how long it takes, as the member chooses it.
    static func tierText(_ tier: String) -> String {
        tier == "Standard" ? "Standard: ready within about 12 hours, costs more" : "Bulk: ready within about 48 hours, the cheapest"
    }

    /// The form that asks for a restore of a file (`fileID`) or of a folder (`directory`: '' for the whole source).
    static func form(label: String, fileID: Int64? = nil, directory: String? = nil, what: String, csrf: String) -> String {
        let target = fileID.map { "<input type=\"hidden\" name=\"file\" value=\"\($0)\">" }
            ?? "<input type=\"hidden\" name=\"dir\" value=\"\(htmlEscape(directory ?? ""))\">"
        return """
            <form method="post" action="/restores" id="restore-form"><input type="hidden" name="csrf" value="\(htmlEscape(csrf))">
            <input type="hidden" name="source" value="\(htmlEscape(label))">\(target)
            <label>Speed <select name="tier" id="restore-tier"><option value="Bulk">\(tierText("Bulk"))</option>
            <option value="Standard">\(tierText("Standard"))</option></select></label>
            <label>Keep for <input name="days" type="number" min="1" max="30" value="7" style="width:4rem"> days</label>
            <button type="submit" id="restore">Restore \(htmlEscape(what))</button></form>
            """
    }

    static func stateText(_ restore: FamilyRestore) -> String {
        switch restore.state {
        case "restoring": "Being restored: \(restore.objectsCached) of \(restore.objects) archive objects are back. Expected by \(Format.timestamp(restore.expectedReadyAt))."
        case "ready": "Ready to download until \(restore.cachedUntil.map(Format.timestamp) ?? "?")."
        case "failed": "Failed: \(restore.error ?? "no reason recorded")"
        case "uncached": "Uncached by \(restore.endedBy ?? "?") \(restore.endedAt.map(Format.timestamp) ?? ""): the restored copy was deleted."
        default: "Expired \(restore.endedAt.map(Format.timestamp) ?? ""): the restored copy was deleted. Ask again to download it."
        }
    }

    static func list(_ restores: [FamilyRestore]) -> String {
        let rows = restores.map { restore in
            "<tr><td><a href=\"/restores/\(restore.id)\">\(restore.id)</a></td><td>\(htmlEscape(restore.sourceLabel))</td>"
                + "<td>\(htmlEscape(restore.selection))</td><td>\(restore.files) files, \(Format.bytes(restore.bytes))</td>"
                + "<td class=\"state\">\(htmlEscape(restore.state))</td><td>\(Format.timestamp(restore.requestedAt))</td></tr>"
        }.joined()
        let table = restores.isEmpty ? "<p id=\"no-restores\">No restores yet: ask for one on a source's, a folder's or a file's page.</p>"
            : "<table id=\"restores\"><tr><th>Restore</th><th>Source</th><th>What</th><th>Size</th><th>State</th><th>Asked</th></tr>\(rows)</table>"
        return AccountPages.head + BrowsePages.style
            + "<title>Restores · family archive</title></head><body><p><a href=\"/account\">← all sources</a></p><h1>Restores</h1>\(table)</body></html>"
    }

    static func page(_ restore: FamilyRestore, entries: [FamilyRestoreEntry], csrf: String?, shownLimit: Int = 500) -> String {
        func row(_ name: String, _ value: String?, id: String? = nil) -> String {
            guard let value else { return "" }
            return "<tr\(id.map { " id=\"\($0)\"" } ?? "")><th>\(name)</th><td>\(value)</td></tr>"
        }
        let source = "<a href=\"\(BrowsePages.sourceLink(restore.sourceLabel))\">\(htmlEscape(restore.sourceLabel))</a>"
        let rows = [
            row("Source", source),
            row("What", restore.fileID.map { "<a href=\"/files/\($0)\">\(htmlEscape(restore.selection))</a>" } ?? htmlEscape(restore.selection)),
            row("Files", "\(restore.files) (\(Format.bytes(restore.bytes)))"),
            row("Asked", "\(Format.timestamp(restore.requestedAt)) by \(htmlEscape(restore.requestedBy))"),
            row("Speed and cost", htmlEscape(tierText(restore.tier)), id: "restore-tier-text"),
            row("Expected ready", Format.timestamp(restore.expectedReadyAt), id: "restore-expected"),
            row("Kept for", "\(restore.days) day\(restore.days == 1 ? "" : "s") once ready"),
            row("State", htmlEscape(stateText(restore)), id: "restore-state"),
        ].joined()
        var body = "<p><a href=\"/restores\">← all restores</a></p><h1>Restore \(restore.id)</h1><table id=\"details\">\(rows)</table>"
        let readable = entries.filter { $0.download.read != nil }
        // While restoring, a file whose archive copy is on its way is not missing: only the others are named then.
        let missing = entries.filter { $0.download.read == nil && (restore.state != "restoring" || !$0.waitsForArchive) }
        if restore.state == "ready" {
            let what = restore.fileID != nil ? "Download the file" : "Download all \(readable.count) files as one tar"
            body += "<p><a href=\"/restores/\(restore.id)/download\" id=\"restore-download\">\(what)</a></p>"
            if restore.fileID == nil, !readable.isEmpty {
                let items = readable.prefix(shownLimit).map { entry in
                    "<li><a href=\"/files/\(entry.fileID)/download\">\(htmlEscape(entry.download.path))</a> (\(Format.bytes(entry.download.size)))</li>"
                }.joined()
                let more = readable.count > shownLimit ? "<p>\(readable.count - shownLimit) more are in the tar.</p>" : ""
                body += "<details><summary>Or one file at a time</summary><ul id=\"restore-files\">\(items)</ul>\(more)</details>"
            }
        }
        if !missing.isEmpty, restore.state == "ready" || restore.state == "restoring" {
            let items = missing.prefix(shownLimit).map { "<li>\(htmlEscape($0.download.path)): \(htmlEscape($0.missingReason ?? ""))</li>" }.joined()
            body += "<div class=\"not-safe\" id=\"restore-missing\"><strong>\(missing.count) file\(missing.count == 1 ? " is" : "s are") not in this restore:</strong><ul>\(items)</ul></div>"
        }
        if let csrf, restore.state == "ready" || restore.state == "restoring" {
            body += "<p>" + BrowsePages.form("/restores/\(restore.id)/uncache", "Uncache now (delete the restored copy)", csrf: csrf, id: "uncache") + "</p>"
        }
        let refresh = restore.state == "restoring" ? "<meta http-equiv=\"refresh\" content=\"60\">" : ""
        return AccountPages.head + BrowsePages.style + refresh
            + "<title>Restore \(restore.id) · family archive</title></head><body>\(body)</body></html>"
    }
}
