import Catalog
import Foundation

/// The family side's pages: plain HTML forms, no script (but the upload page's own, `UploadPage`), readable on a phone.
enum AccountPages {
    static let head = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}
        input{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}button{font-size:1rem;padding:.4rem 1rem;margin-top:.6rem}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #ddd}
        .problem{color:#a00}form.inline{display:inline}</style>
        """

    /// The login form (`username`, `password`, `csrf`); `problem` is one line shown above it.
    static func login(csrf: String, problem: String? = nil) -> String {
        let line = problem.map { "<p class=\"problem\" id=\"login-problem\">\(htmlEscape($0))</p>" } ?? ""
        return head + """
            <title>Log in · family archive</title></head><body><h1>Family archive</h1>\(line)
            <form method="post" action="/login" id="login-form">
            <input type="hidden" name="csrf" value="\(htmlEscape(csrf))">
            <label>User name <input name="username" autocomplete="username" required autofocus></label>
            <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
            <button type="submit">Log in</button></form></body></html>
            """
    }

    /// The signed-in person's start page: their sources, and the two ways out.
    static func account(_ user: AccountUser, sources: [FamilySource], csrf: String) -> String {
        let rows = sources.map { source in
            let states = source.states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "<tr><td class=\"source-label\"><a href=\"\(BrowsePages.sourceLink(source.label))\">\(htmlEscape(source.label))</a></td><td>\(htmlEscape(source.owner ?? "(no owner)"))</td>"
                + "<td>\(source.files)</td><td>\(htmlEscape(states))</td></tr>"
        }.joined()
        let table = sources.isEmpty
            ? "<p id=\"no-sources\">No sources yet.</p>"
            : "<table id=\"sources\"><tr><th>Source</th><th>Owner</th><th>Files</th><th>States</th></tr>\(rows)</table>"
        let field = "<input type=\"hidden\" name=\"csrf\" value=\"\(htmlEscape(csrf))\">"
        return head + """
            <title>\(htmlEscape(user.name)) · family archive</title></head><body><h1>Family archive</h1>
            <p id="signed-in">Signed in as <strong>\(htmlEscape(user.name))</strong> (\(user.role.rawValue)).\(user.role == .admin ? " <a href=\"/admin\" id=\"admin-link\">Admin</a>" : "")</p>
            \(table)
            <p><a href="/upload" id="upload-link">Upload files or a folder</a> · <a href="/restores" id="restores-link">Restores</a></p>
            <form method="post" action="/logout" class="inline">\(field)<button type="submit" id="logout">Log out</button></form>
            <form method="post" action="/logout-everywhere" class="inline">\(field)<button type="submit" id="logout-everywhere">Log out everywhere</button></form>
            </body></html>
            """
    }
}
