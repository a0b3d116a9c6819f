import Catalog
import Foundation
import PipelineCore

/// A source as a folder tree, a search within it, and one file's details: server-rendered HTML, no script.
enum BrowsePages {
    /// What the caller may do on the page: forms only for a browser session (they carry its CSRF token), and the
    /// files whose deletion is pending (with when it was asked for).
    struct Actions {
        var csrf: String?
        var pending: [Int64: Date] = [:]
        /// The file's live share links (the file page).
        var shares: [FamilyShare] = []
    }

    /// A one-button form carrying the session's CSRF token. No confirmation dialog (the pages run no script: the CSP
    /// allows none); a delete is only a request, undone with one click until the archiver carries it out.
    static func form(_ action: String, _ label: String, csrf: String, id: String) -> String {
        "<form method=\"post\" action=\"\(action)\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(htmlEscape(csrf))\">"
            + "<button type=\"submit\" id=\"\(id)\">\(htmlEscape(label))</button></form>"
    }

    static let graceNote = "the archiver carries it out after its grace period (30 days unless configured otherwise); until then it can be undone"

    /// A path segment or query value, percent-encoded so that `/`, `%`, `?`, `#` and spaces in labels survive.
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? ""
    }

    static func sourceLink(_ label: String, dir: String = "") -> String {
        "/sources/\(encode(label))" + (dir.isEmpty ? "" : "?dir=\(encode(dir))")
    }

    /// The answer to "may I destroy the original?", as `uploader audit` last gave it, and what changed since.
    struct Verdict {
        let safe: Bool
        /// One plain-text line (the live updates send it as it is).
        let headline: String
        /// What follows the headline on the page (HTML).
        let details: String

        var html: String {
            "<div id=\"verdict\" class=\"\(safe ? "safe" : "not-safe")\"><strong>\(htmlEscape(headline))</strong>\(details)</div>"
        }
    }

    static func verdict(_ overview: FamilySourceOverview) -> Verdict {
        let completion = overview.completion
        let auditCommand = "<code>uploader audit --source \"\(htmlEscape(overview.label))\"</code>"
        if !completion.isFullyArchived {
            let reasons = completion.reasonsNotArchived.map { "<li>\(htmlEscape($0))</li>" }.joined()
            let failed = completion.notStored.prefix(20).map { "<li>\(htmlEscape($0.path)): \(htmlEscape($0.state))\($0.error.map { " — " + htmlEscape($0) } ?? "")</li>" }.joined()
            return Verdict(safe: false, headline: "Not safe to destroy the original yet.", details: "<ul>\(reasons)\(failed)</ul>")
        }
        guard let audit = overview.lastAudit else {
            return Verdict(safe: false, headline: "Archived, not yet audited.", details: """
                 Every file is recorded as archived; keep the
                original until the audit has read the archive itself: \(auditCommand).
                """)
        }
        let when = Format.timestamp(audit.checkedAt)
        if let changed = overview.lastChange, changed > audit.checkedAt {
            return Verdict(safe: false, headline: "Audited \(when), but files were added or archived since.", details: """
                 Run the audit
                again before destroying the original: \(auditCommand).
                """)
        }
        if audit.safe {
            return Verdict(safe: true, headline: "Safe to destroy the original.", details: """
                 The audit of \(when) found all \(audit.files)
                files in the archive (\(audit.contentVerified) read back and hashed, \(audit.sizeChecked) checked by size and class).
                """)
        }
        let problems = audit.problems.prefix(20).map { "<li>\(htmlEscape($0))</li>" }.joined()
        return Verdict(safe: false, headline: "Not safe: the audit of \(when) found problems.", details: "<ul>\(problems)</ul>")
    }

    static let style = "<style>.safe{background:#e6f4e6;padding:.5rem}.not-safe{background:#fbeaea;padding:.5rem}code{word-break:break-all}"
        + "td.size,td.files{text-align:right}nav a{margin-right:.3rem}</style>"

    static func source(_ overview: FamilySourceOverview, dir: String, listing: (folders: [FamilyListedFolder], files: [FamilyListedFile])?,
                       query: String?, results: [FamilyListedFile]?, resultLimit: Int, actions: Actions) -> String {
        let states = overview.states.sorted { $0.key < $1.key }.map { "\(htmlEscape($0.key)) \($0.value)" }.joined(separator: ", ")
        var crumbs = ["<a href=\"\(sourceLink(overview.label))\">\(htmlEscape(overview.label))</a>"]
        var walked = ""
        for part in dir.split(separator: "/") {
            walked += part + "/"
            crumbs.append("<a href=\"\(sourceLink(overview.label, dir: walked))\">\(htmlEscape(String(part)))</a>")
        }
        var body = """
            <p><a href="/account">← all sources</a></p><h1>\(htmlEscape(overview.label))</h1>
            <p>Owner: \(htmlEscape(overview.owner ?? "(no owner)"))\(overview.note.map { " · " + htmlEscape($0) } ?? "") · <span id="live-states">\(states)</span></p>
            <p id="live" data-events="/api/sources/\(encode(overview.label))/events"></p><script src="/static/live.js" defer></script>
            \(verdict(overview).html)
            \(sourceDeletes(overview, actions: actions))
            \(actions.csrf.map { RestorePages.form(label: overview.label, directory: dir, what: dir.isEmpty ? "the whole source" : "this folder", csrf: $0) } ?? "")
            <form method="get" action="\(sourceLink(overview.label))" id="search"><label>Search by name
            <input name="q" value="\(htmlEscape(query ?? ""))"></label><button type="submit">Search</button></form>
            """
        if let results, let query {
            let more = results.count >= resultLimit ? "<p>Only the first \(resultLimit) are shown: narrow the search.</p>" : ""
            body += "<h2>\(results.count) file\(results.count == 1 ? "" : "s") matching “\(htmlEscape(query))”</h2>" + fileTable(results, id: "results", pending: actions.pending) + more
        }
        if let listing {
            body += "<nav id=\"path\">" + crumbs.joined(separator: " / ") + "</nav>"
            let folders = listing.folders.map { folder in
                "<tr class=\"folder\"><td><a href=\"\(sourceLink(overview.label, dir: dir + folder.name + "/"))\">\(htmlEscape(folder.name))/</a></td>"
                    + "<td class=\"files\">\(folder.files) files</td><td class=\"size\">\(Format.bytes(folder.bytes))</td><td></td></tr>"
            }.joined()
            body += listing.folders.isEmpty && listing.files.isEmpty
                ? "<p id=\"empty-folder\">Nothing here.</p>"
                : "<table id=\"folder\"><tr><th>Name</th><th></th><th>Size</th><th>State</th></tr>\(folders)\(fileRows(listing.files, relativeTo: dir, pending: actions.pending))</table>"
        }
        return AccountPages.head + style + "<title>\(htmlEscape(overview.label)) · family archive</title></head><body>\(body)</body></html>"
    }

    static func fileTable(_ files: [FamilyListedFile], id: String, pending: [Int64: Date]) -> String {
        "<table id=\"\(id)\"><tr><th>Path</th><th></th><th>Size</th><th>State</th></tr>\(fileRows(files, relativeTo: "", pending: pending))</table>"
    }

    /// The source's delete request and its undo.
    static func sourceDeletes(_ overview: FamilySourceOverview, actions: Actions) -> String {
        let link = "/sources/\(encode(overview.label))"
        var html = ""
        if let first = actions.pending.values.min() {
            html += "<p id=\"pending-deletes\" class=\"not-safe\">\(actions.pending.count) file\(actions.pending.count == 1 ? " is" : "s are") to be deleted "
                + "(asked \(Format.timestamp(first))): \(graceNote). "
                + (actions.csrf.map { form(link + "/undo-delete", "Undo every delete of this source", csrf: $0, id: "undo-source-delete") } ?? "") + "</p>"
        }
        if let csrf = actions.csrf {
            html += "<p>" + form(link + "/delete", "Delete this source", csrf: csrf, id: "delete-source") + "</p>"
        }
        return html
    }

    static func fileRows(_ files: [FamilyListedFile], relativeTo dir: String, pending: [Int64: Date] = [:]) -> String {
        files.map { file in
            let name = String(file.path.dropFirst(dir.count))
            let versions = file.versions > 1 ? "version \(file.version) of \(file.versions)" : ""
            let download = file.downloadable ? " <a href=\"/files/\(file.id)/download\" class=\"download\">download</a>" : ""
            let deleting = pending[file.id] != nil ? " <span class=\"to-be-deleted\">(to be deleted)</span>" : ""
            return "<tr class=\"file\"><td><a href=\"/files/\(file.id)\">\(htmlEscape(name))</a>\(download)\(deleting)</td><td>\(versions)</td>"
                + "<td class=\"size\">\(Format.bytes(file.size))</td><td class=\"state\">\(htmlEscape(file.state))</td></tr>"
        }.joined()
    }

    static func file(_ file: FamilyFileDetails, actions: Actions) -> String {
        func row(_ name: String, _ value: String?, id: String? = nil) -> String {
            guard let value else { return "" }
            return "<tr\(id.map { " id=\"\($0)\"" } ?? "")><th>\(name)</th><td>\(value)</td></tr>"
        }
        let dir = (file.path as NSString).deletingLastPathComponent
        let stored: String? = switch (file.storage, file.bundleID) {
        case ("archive"?, let bundle?): "archive, bundle \(bundle) at offset \(file.bundleOffset ?? 0): <code>\(htmlEscape(file.archiveKey ?? ""))</code>"
        case ("archive"?, nil): "archive: <code>\(htmlEscape(file.archiveKey ?? ""))</code>"
        case ("staging"?, _): "staging (waiting for the archive): <code>\(htmlEscape(file.storageKey ?? ""))</code>"
        case ("spool"?, _): "the uploader's spool (not sent yet)"
        default: file.effectiveState == "duplicate" || file.state == "duplicate" ? "stored once, with the file it duplicates" : "nowhere yet"
        }
        let duplicate: String? = file.duplicateOf.map { "<a href=\"/files/\($0)\">file \($0)</a>" }
            ?? (file.duplicateOfHidden ? "a file of another person's source (same content, stored once)" : nil)
        let versions = file.versions.map { version in
            version.id == file.id ? "<strong>\(version.version)</strong>" : "<a href=\"/files/\(version.id)\">\(version.version)</a> (\(htmlEscape(version.state)))"
        }.joined(separator: ", ")
        let rows = [
            row("Source", "<a href=\"\(sourceLink(file.sourceLabel, dir: dir.isEmpty ? "" : dir + "/"))\">\(htmlEscape(file.sourceLabel))</a>"),
            row("Path", htmlEscape(file.path), id: "file-path"),
            row("Versions", versions),
            row("Kind", htmlEscape(file.kind)),
            row("State", htmlEscape(file.effectiveState) + (file.effectiveState != file.state ? " (row: \(htmlEscape(file.state)))" : ""), id: "file-state"),
            row("Error", file.error.map(htmlEscape)),
            row("Size", "\(Format.bytes(file.size)) (\(file.size) bytes)"),
            row("SHA-256", file.hash.map { "<code>\($0)</code>" }, id: "file-hash"),
            row("Stored", stored),
            row("Stored size", file.storedSize.map { "\(Format.bytes($0))" + (file.encrypted ? " (encrypted with age)" : "") }),
            row("Tier", htmlEscape(file.tier)),
            row("Duplicate of", duplicate),
            row("Transcode", file.transcodeID.map { "<a href=\"/files/\($0)\" id=\"transcode-link\">file \($0)</a>" }),
            row("Transcode of", file.originalID.map { "<a href=\"/files/\($0)\" id=\"original-link\">file \($0)</a>" }),
            row("Added", Format.timestamp(file.createdAt)),
            row("Archived", file.archivedAt.map(Format.timestamp)),
            row("Download", file.downloadable ? "<a href=\"/files/\(file.id)/download\" id=\"download\">download</a>"
                : file.encrypted ? "encrypted with your key: <code>uploader restore --identity</code> on a computer that holds it" : "needs a restore first (below)"),
        ].joined()
        let name = (file.path as NSString).lastPathComponent
        var delete = ""
        if let asked = actions.pending[file.id] {
            delete = "<p id=\"pending-delete\" class=\"not-safe\">Deletion asked \(Format.timestamp(asked)): \(graceNote). "
                + (actions.csrf.map { form("/files/\(file.id)/undo-delete", "Undo the delete", csrf: $0, id: "undo-delete") } ?? "") + "</p>"
        } else if let csrf = actions.csrf {
            delete = "<p>" + form("/files/\(file.id)/delete", "Delete this file", csrf: csrf, id: "delete") + "</p>"
        }
        let restore = !file.downloadable && !file.encrypted && file.hash != nil
            ? actions.csrf.map { RestorePages.form(label: file.sourceLabel, fileID: file.id, what: "this file", csrf: $0) } ?? "" : ""
        return AccountPages.head + style
            + "<title>\(htmlEscape(name)) · family archive</title></head><body><h1>\(htmlEscape(name))</h1><table id=\"details\">\(rows)</table>\(restore)\(delete)"
            + shareSection(file, actions: actions) + "</body></html>"
    }

    /// The file's live share links with their revoke buttons, and the form that makes a new one.
    static func shareSection(_ file: FamilyFileDetails, actions: Actions) -> String {
        let rows = actions.shares.map { share in
            "<li class=\"share\">made by \(htmlEscape(share.createdBy)) \(Format.timestamp(share.createdAt)), valid until \(Format.timestamp(share.expiresAt)) "
                + (actions.csrf.map { form("/files/\(file.id)/shares/\(share.id)/revoke", "Revoke", csrf: $0, id: "revoke-\(share.id)") } ?? "") + "</li>"
        }.joined()
        var html = actions.shares.isEmpty ? "" : "<h2>Share links</h2><ul id=\"shares\">\(rows)</ul>"
        if file.downloadable, let csrf = actions.csrf {
            html += """
                <form method="post" action="/files/\(file.id)/share" id="share-form"><input type="hidden" name="csrf" value="\(htmlEscape(csrf))">
                <label>Share a link for <input name="days" type="number" min="1" max="7" value="7" style="width:4rem"> days</label>
                <button type="submit" id="share">Make a share link</button></form>
                """
        }
        return html
    }
}
