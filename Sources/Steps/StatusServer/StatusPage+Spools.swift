import Catalog
import Foundation
import PipelineCore

extension StatusPage {
    /// Under a source with files in a spool: read, sent and archived, and what each spool's sender last said (so a
    /// source that waits for an evening window says "paused until 01:00" instead of looking stuck).
    static func spoolProgress(_ source: SourceStatus, spools: [SpoolSenderStatus]) -> String {
        guard !source.waitingInSpools.isEmpty else { return "" }
        let counts = "read \(Format.count(source.filesTotal)) · sent \(Format.count(source.filesSent)) · archived \(Format.count(source.filesDone))"
        let waits = source.waitingInSpools.map { wait in
            let spool = spools.first { $0.spoolID == wait.spoolID }
            let place = spool.map { "\(htmlEscape($0.path)) on \(htmlEscape($0.host))" } ?? "a spool no longer listed"
            return "\(Format.count(wait.files)) waiting in \(place): \(htmlEscape(spool?.said ?? "no sender has run"))"
        }
        return "\n<div class=\"small spool-progress\">\(counts) · \(waits.joined(separator: " · "))</div>"
    }

    /// Every spool, what waits in it and its sender's last word (sending, paused until, offline since, idle, stopped).
    static func spools(_ s: StatusSnapshot) -> String {
        guard !s.spools.isEmpty else { return "" }
        var html = "<section id=\"spools\"><h2>Spools and senders</h2><table class=\"spools\"><thead><tr><th>Spool</th>"
            + "<th class=\"num\">Waiting to send</th><th>Sender</th><th>As of</th></tr></thead><tbody>"
        for spool in s.spools {
            html += "<tr><td class=\"path\">\(htmlEscape(spool.path)) <span class=\"muted small\">on \(htmlEscape(spool.host))</span></td>"
                + "<td class=\"num\">\(Format.count(spool.files)) file\(spool.files == 1 ? "" : "s") · \(Format.bytes(spool.bytes))</td>"
                + "<td>\(htmlEscape(spool.said))</td><td class=\"nowrap\">\(spool.updatedAt.map(Format.timestamp) ?? "never")</td></tr>"
        }
        return html + "</tbody></table><p class=\"muted small\">Run <code>uploader send --watch</code> (or its systemd unit) to drain a spool.</p></section>\n"
    }
}
