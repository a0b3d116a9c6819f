import Foundation
import PipelineCore
import Catalog

/// The HTML status page: one self-contained document (inline CSS and SVG, no script, no CDN) that reloads itself.
/// Everything that comes from the catalog goes through `htmlEscape`.
enum StatusPage {
    static let stateOrder = ["spooled", "staged", "transcoding", "transcoded", "archiving", "archived", "duplicate", "failed", "unreadable"]
    static let stateColors: [String: String] = [
        "staged": "#94a3b8", "transcoding": "#a855f7", "transcoded": "#c084fc", "archiving": "#3b82f6",
        "archived": "#16a34a", "duplicate": "#14b8a6", "failed": "#dc2626", "unreadable": "#f97316",
    ]
    static let stateMeaning: [String: String] = [
        "staged": "uploaded, waiting for a worker", "transcoding": "a video being transcoded", "transcoded": "transcoded, waiting to be archived",
        "archiving": "being packed and sent to the archive", "archived": "safe in the archive", "duplicate": "content already archived elsewhere",
        "failed": "gave up after the last attempt", "unreadable": "the source could not be read",
    ]

    static func render(_ snapshot: StatusSnapshot, refreshSeconds: Int, authenticated: Bool) -> String {
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="refresh" content="\(refreshSeconds)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Format.percent(snapshot.progress)) archived · backup status</title>
            <style>\(css)</style></head><body><main>
            <header><div><h1>Backup status</h1>
            <p class="muted">Updated \(Format.timestamp(snapshot.generatedAt)) · refreshes every \(refreshSeconds) s · catalog read in \(String(format: "%.0f", snapshot.queryMilliseconds)) ms\(authenticated ? "" : "")</p></div>
            <div class="links"><a href="/api/status">JSON</a> · <a href="/metrics">metrics</a></div></header>

            """
        html += overview(snapshot)
        html += chart(snapshot.archivedSeries)
        html += sources(snapshot)
        html += spools(snapshot)
        html += tiers(snapshot)
        html += states(snapshot)
        html += workers(snapshot.workers)
        html += failures(snapshot.failures)
        html += keptRaw(snapshot.keptRaw)
        html += alerts(snapshot.recentAlerts, undelivered: snapshot.alertsUndelivered)
        html += "<footer class=\"muted\">personal-backup status server</footer></main></body></html>\n"
        return html
    }

    static func progressBar(_ ratio: Double, states: [String: Int64]? = nil, total: Int64 = 0) -> String {
        // With per-state bytes the bar shows each state's share, done states first.
        if let states, total > 0 {
            var segments = ""
            for state in ["archived", "duplicate", "archiving", "transcoded", "transcoding", "staged", "failed", "unreadable"] {
                let bytes = states[state] ?? 0
                guard bytes > 0 else { continue }
                let width = Double(bytes) / Double(total) * 100
                segments += "<span style=\"width:\(String(format: "%.3f", width))%;background:\(stateColors[state] ?? "#999")\" title=\"\(state): \(Format.bytes(bytes))\"></span>"
            }
            return "<div class=\"bar stacked\" role=\"progressbar\" aria-valuenow=\"\(Int(ratio * 100))\">\(segments)</div>"
        }
        return "<div class=\"bar\" role=\"progressbar\" aria-valuenow=\"\(Int(ratio * 100))\"><span style=\"width:\(String(format: "%.2f", ratio * 100))%\"></span></div>"
    }

    static func overview(_ s: StatusSnapshot) -> String {
        let pending = (s.filesByState["spooled"] ?? 0) + (s.filesByState["staged"] ?? 0) + (s.filesByState["transcoding"] ?? 0) + (s.filesByState["transcoded"] ?? 0) + (s.filesByState["archiving"] ?? 0)
        let savedRatio = s.bytesRaw > 0 ? " (\(Format.percent(Double(s.bytesSaved) / Double(s.bytesRaw))) of the original)" : ""
        return """
            <section class="hero">
            <div class="big"><span id="overall-progress">\(Format.percent(s.progress))</span> archived</div>
            \(progressBar(s.progress))
            <p>\(Format.bytes(s.bytesDone)) of \(Format.bytes(max(s.bytesRaw, s.bytesDone))) safe · \(Format.count(pending)) file\(pending == 1 ? "" : "s") to go ·
            rate \(Format.rate(s.bytesPerSecond)) · ETA <b>\(Format.eta(s.etaSeconds))</b></p>
            </section>
            <section class="cards" id="totals">
            <div class="card"><div class="label">Files known</div><div class="value" id="files-total">\(Format.count(s.filesTotal))</div>
              <div class="sub">\(Format.count(s.filesDone)) done · \(Format.count(s.filesByState["failed"] ?? 0)) failed</div></div>
            <div class="card"><div class="label">Raw bytes</div><div class="value" id="bytes-raw">\(Format.bytes(s.bytesRaw))</div>
              <div class="sub">\(Format.count(s.bytesRaw)) bytes as found on the media</div></div>
            <div class="card"><div class="label">After processing</div><div class="value" id="bytes-stored">\(Format.bytes(s.bytesStored))</div>
              <div class="sub">what the archived files take in the archive</div></div>
            <div class="card"><div class="label">Saved</div><div class="value" id="bytes-saved">\(Format.bytes(s.bytesSaved))</div>
              <div class="sub">transcoding \(Format.bytes(s.bytesSavedTranscoding)) · dedupe \(Format.bytes(s.bytesSavedDedupe)) · compression \(Format.bytes(s.bytesSavedCompression))\(savedRatio)</div></div>
            </section>

            """
    }

    static func chart(_ series: ArchivedSeries) -> String {
        var html = "<section><h2>Archived over time</h2>"
        guard series.points.count > 0, let last = series.points.last, last.cumulativeBytes > 0 else {
            return html + "<p class=\"muted\">Nothing archived yet.</p></section>\n"
        }
        let width = 960.0, height = 240.0, left = 64.0, right = 72.0, top = 12.0, bottom = 28.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let maxBar = Double(max(1, series.points.map(\.bytes).max() ?? 1))
        let first = series.points.first!.cumulativeBytes - series.points.first!.bytes
        let maxTotal = Double(max(1, last.cumulativeBytes))
        let step = plotWidth / Double(series.points.count)
        var svg = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" class=\"chart\" role=\"img\" aria-label=\"Bytes archived over time\">"
        // Grid and axes.
        for fraction in [0.0, 0.5, 1.0] {
            let y = top + plotHeight * (1 - fraction)
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\" class=\"axis bars\">\(Format.bytes(Int64(maxBar * fraction)))</text>"
            svg += "<text x=\"\(width - right + 6)\" y=\"\(f(y + 4))\" class=\"axis total\">\(Format.bytes(Int64(maxTotal * fraction)))</text>"
        }
        // Bars: bytes archived in each bucket.
        for (index, point) in series.points.enumerated() where point.bytes > 0 {
            let barHeight = max(1, Double(point.bytes) / maxBar * plotHeight)
            let x = left + Double(index) * step + step * 0.1
            svg += "<rect x=\"\(f(x))\" y=\"\(f(top + plotHeight - barHeight))\" width=\"\(f(step * 0.8))\" height=\"\(f(barHeight))\" class=\"barfill\"><title>\(Format.shortTime(point.start, withDate: true)): \(Format.bytes(point.bytes))</title></rect>"
        }
        // Line: everything archived so far.
        var path = "M\(f(left)),\(f(top + plotHeight * (1 - Double(first) / maxTotal)))"
        for (index, point) in series.points.enumerated() {
            let x = left + Double(index + 1) * step
            path += " L\(f(x)),\(f(top + plotHeight * (1 - Double(point.cumulativeBytes) / maxTotal)))"
        }
        svg += "<path d=\"\(path)\" class=\"line\"/>"
        // Time labels.
        let span = series.bucketSeconds * Double(series.points.count)
        let labelCount = min(6, series.points.count)
        for label in 0..<labelCount {
            let index = labelCount == 1 ? 0 : Int((Double(label) / Double(labelCount - 1) * Double(series.points.count - 1)).rounded())
            let x = left + Double(index) * step + step / 2
            svg += "<text x=\"\(f(x))\" y=\"\(f(height - 8))\" text-anchor=\"middle\" class=\"axis\">\(Format.shortTime(series.points[index].start, withDate: span > 86400))</text>"
        }
        svg += "</svg>"
        html += svg
        html += "<p class=\"legend\"><span class=\"swatch bars\"></span> archived per \(Format.duration(series.bucketSeconds)) (left scale) <span class=\"swatch total\"></span> total archived (right scale)</p></section>\n"
        return html
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func statePills(_ files: [String: Int64]) -> String {
        stateOrder.compactMap { state -> String? in
            guard let count = files[state], count > 0 else { return nil }
            return "<span class=\"pill\" style=\"--c:\(stateColors[state] ?? "#999")\">\(state) \(Format.count(count))</span>"
        }.joined(separator: " ")
    }

    static func sources(_ s: StatusSnapshot) -> String {
        var html = "<section><h2>Sources</h2>"
        guard !s.sources.isEmpty else { return html + "<p class=\"muted\">No source ingested yet: run <code>uploader upload PATH --label LABEL</code>.</p></section>\n" }
        html += "<table class=\"sources\"><thead><tr><th>Source</th><th>Files by state</th><th>Progress</th><th class=\"num\">Rate</th><th class=\"num\">ETA</th></tr></thead><tbody>"
        for source in s.sources {
            var metadata = ""
            if case .object(let members) = source.metadata, !members.isEmpty {
                metadata = members.sorted { $0.key < $1.key }.map {
                    "<span class=\"meta\">\(htmlEscape($0.key))=\(htmlEscape($0.value.displayText))</span>"
                }.joined(separator: " ")
            }
            let status: String
            if source.complete {
                status = "<span class=\"badge ok\">archived</span>"
            } else if source.finishedAt == nil {
                status = "<span class=\"badge busy\">uploading</span>"
            } else if source.walkProblems > 0 {
                status = "<span class=\"badge bad\">incomplete</span>"
            } else if (source.filesByState["spooled"] ?? 0) > 0 {
                status = "<span class=\"badge busy\">read, waiting to send</span>"
            } else if (source.filesByState["failed"] ?? 0) > 0 && source.etaSeconds == 0 {
                status = "<span class=\"badge bad\">has failures</span>"
            } else {
                status = "<span class=\"badge busy\">processing</span>"
            }
            let expected = source.finishedAt == nil ? max(source.bytesSeen, source.bytesTotal) : source.bytesTotal
            html += """
                <tr><td><div class="label-cell"><b>\(htmlEscape(source.label))</b> \(status) \(tierBadge(source.tier))</div>
                <div class="muted small">\(metadata)\(source.note.map { " · " + htmlEscape($0) } ?? "")</div>
                <div class="muted small">started \(Format.timestamp(source.startedAt))\(source.finishedAt == nil ? " · \(Format.count(source.filesSeen)) files found so far" : "")</div>\(spoolProgress(source, spools: s.spools))\(encryption(source))\(walkProblems(source))</td>
                <td>\(statePills(source.filesByState))</td>
                <td class="progress-cell">\(progressBar(source.progress, states: source.bytesByState, total: max(expected, source.bytesTotal)))
                <div class="small">\(Format.percent(source.progress)) · \(Format.bytes(source.bytesDone)) of \(Format.bytes(expected)) · \(Format.count(source.filesDone))/\(Format.count(max(source.filesTotal, source.filesSeen))) files</div></td>
                <td class="num">\(Format.rate(source.bytesPerSecond))</td><td class="num">\(Format.eta(source.etaSeconds))</td></tr>
                """
        }
        return html + "</tbody></table></section>\n"
    }

    /// An encrypted source says so, and that its videos are archived as recorded: the cloud cannot transcode them.
    static func encryption(_ source: SourceStatus) -> String {
        guard let encryption = source.encryption else { return "" }
        let videos = source.videosNotTranscoded > 0
            ? " · \(Format.count(source.videosNotTranscoded)) video\(source.videosNotTranscoded == 1 ? "" : "s") archived as recorded, not transcoded (the cloud cannot read encrypted files)"
            : ""
        return "\n<div class=\"small encryption\">encrypted on this side (\(htmlEscape(encryption)))\(videos)</div>"
    }

    /// The paths the last upload could not read, under the source's label (nothing when it saw everything).
    static func walkProblems(_ source: SourceStatus) -> String {
        guard source.walkProblems > 0 else { return "" }
        let more = source.walkProblems > Int64(source.walkProblemPaths.count)
            ? "<li>… \(Format.count(source.walkProblems - Int64(source.walkProblemPaths.count))) more (<code>uploader sources</code>)</li>" : ""
        return """
            <div class="small walk-problems"><b>\(Format.count(source.walkProblems)) path\(source.walkProblems == 1 ? "" : "s") could not be read; \
            files may be missing (fix and run the upload again):</b><ul>\(source.walkProblemPaths.map { "<li>\(htmlEscape($0))</li>" }.joined())\(more)</ul></div>
            """
    }

    static func states(_ s: StatusSnapshot) -> String {
        var html = "<section><h2>Files by state</h2><table class=\"states\"><thead><tr><th>State</th><th class=\"num\">Files</th><th class=\"num\">Bytes</th><th>Meaning</th></tr></thead><tbody>"
        for state in stateOrder {
            let files = s.filesByState[state] ?? 0
            html += "<tr\(files == 0 ? " class=\"zero\"" : "")><td><span class=\"dot\" style=\"background:\(stateColors[state] ?? "#999")\"></span>\(state)</td><td class=\"num\" id=\"state-\(state)\">\(Format.count(files))</td><td class=\"num\">\(Format.bytes(s.bytesByState[state] ?? 0))</td><td class=\"muted\">\(stateMeaning[state] ?? "")</td></tr>"
        }
        html += "<tr class=\"total\"><td>all</td><td class=\"num\">\(Format.count(s.filesTotal))</td><td class=\"num\">\(Format.bytes(s.bytesRaw))</td><td></td></tr>"
        return html + "</tbody></table></section>\n"
    }

    static func workers(_ workers: [WorkerStatus]) -> String {
        var html = "<section><h2>Workers</h2>"
        guard !workers.isEmpty else { return html + "<p class=\"muted\">No worker has registered in the last day.</p></section>\n" }
        html += "<table><thead><tr><th>Role</th><th>Host · pid</th><th>Status</th><th>Last heartbeat</th><th class=\"num\">Jobs held</th><th>Version</th><th>Started</th></tr></thead><tbody>"
        for worker in workers {
            let badge: String =
                switch worker.status {
                case .alive: "<span class=\"badge ok\">alive</span>"
                case .dead: "<span class=\"badge bad\">no heartbeat</span>"
                case .stopped: "<span class=\"badge\">stopped</span>"
                }
            let reason = worker.stopReason.map { "<div class=\"muted small\">\(htmlEscape($0))</div>" } ?? ""
            html += "<tr><td>\(htmlEscape(worker.role))</td><td>\(htmlEscape(worker.host)) · \(worker.pid.map(String.init) ?? "?")</td><td>\(badge)\(reason)</td><td>\(Format.age(worker.heartbeatAgeSeconds))</td><td class=\"num\">\(worker.jobs)</td><td>\(htmlEscape(worker.version ?? "?"))</td><td>\(Format.timestamp(worker.startedAt))</td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }

    static func failures(_ failures: [FailureStatus]) -> String {
        var html = "<section><h2>Latest failures</h2>"
        guard !failures.isEmpty else { return html + "<p class=\"muted\">No failed or unreadable file. 🎉</p></section>\n" }
        html += "<table class=\"failures\"><thead><tr><th>When</th><th>Source</th><th>File</th><th>State</th><th>Error</th></tr></thead><tbody>"
        for failure in failures {
            html += "<tr><td class=\"nowrap\">\(Format.timestamp(failure.updatedAt))</td><td>\(htmlEscape(failure.source))</td><td class=\"path\">\(htmlEscape(failure.path)) <span class=\"muted small\">#\(failure.fileID)</span></td><td><span class=\"pill\" style=\"--c:\(stateColors[failure.state] ?? "#999")\">\(htmlEscape(failure.state))</span> <span class=\"muted small\">\(failure.attempts) attempt\(failure.attempts == 1 ? "" : "s")</span></td><td><pre>\(htmlEscape(failure.error ?? "(no error recorded)"))</pre></td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }

    static func keptRaw(_ kept: KeptRawStatus) -> String {
        var html = "<section id=\"kept-raw\"><h2>Videos kept raw</h2>"
        guard kept.count > 0 else { return html + "<p class=\"muted\">Every video was transcoded faithfully.</p></section>\n" }
        html += "<p class=\"warn\"><b id=\"kept-raw-count\">\(Format.count(kept.count))</b> video\(kept.count == 1 ? " is" : "s are") archived as the raw original instead of a transcode. Nothing is lost, but a person should look: split the recordings, transcode by hand, or accept the raw file.</p>"
        html += "<table class=\"failures\"><thead><tr><th>When</th><th>Source</th><th>File</th><th>State</th><th>Why the raw file was kept</th></tr></thead><tbody>"
        for file in kept.latest {
            let reasons = file.reasons.map { "<li>\(htmlEscape($0))</li>" }.joined()
            html += "<tr><td class=\"nowrap\">\(Format.timestamp(file.updatedAt))</td><td>\(htmlEscape(file.source))</td><td class=\"path\">\(htmlEscape(file.path)) <span class=\"muted small\">#\(file.fileID)</span></td><td><span class=\"pill\" style=\"--c:\(stateColors[file.state] ?? "#999")\">\(htmlEscape(file.state))</span></td><td><ul class=\"reasons\">\(reasons)</ul></td></tr>"
        }
        if kept.count > Int64(kept.latest.count) { html += "<tr><td colspan=\"5\" class=\"muted\">and \(Format.count(kept.count - Int64(kept.latest.count))) more</td></tr>" }
        return html + "</tbody></table></section>\n"
    }

    static func alerts(_ alerts: [AlertStatus], undelivered: Int64) -> String {
        var html = "<section><h2>Recent alerts</h2>"
        guard !alerts.isEmpty else { return html + "<p class=\"muted\">No alert so far.</p></section>\n" }
        if undelivered > 0 { html += "<p class=\"warn\">\(undelivered) alert\(undelivered == 1 ? " is" : "s are") waiting to be delivered.</p>" }
        html += "<table><thead><tr><th>When</th><th>Kind</th><th>Message</th><th>Delivery</th></tr></thead><tbody>"
        for alert in alerts {
            let delivery: String =
                if alert.deliveredAt != nil { "<span class=\"badge ok\">sent</span>" } else if let error = alert.lastError {
                    "<span class=\"badge bad\">not sent</span> <span class=\"muted small\">\(htmlEscape(error))</span>"
                } else { "<span class=\"badge\">pending</span>" }
            html += "<tr><td class=\"nowrap\">\(Format.timestamp(alert.createdAt))</td><td>\(htmlEscape(alert.kind))</td><td>\(htmlEscape(alert.message))</td><td>\(delivery)</td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }

    static func loginPage(refused: Bool) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sign in · backup status</title><style>\(css)</style></head><body><main class="login">
        <h1>Backup status</h1>
        <p class="muted">This status page needs the token set in <code>BACKUP_STATUS_TOKEN</code>.</p>
        \(refused ? "<p class=\"warn\">That token is not the right one.</p>" : "")
        <form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
        <button type="submit">Sign in</button></form></main></body></html>

        """
    }

    static let css = """
        :root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--accent:#16a34a}
        *{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
        main{max-width:1200px;margin:0 auto;padding:24px}header{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap}
        h1{margin:0;font-size:26px}h2{font-size:18px;margin:0 0 10px}section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;margin:16px 0}
        .muted{color:var(--muted)}.small{font-size:12.5px}.links a{color:var(--muted)}
        .hero .big{font-size:34px;font-weight:700;margin-bottom:8px}.hero p{margin:10px 0 0}
        .bar{height:14px;background:#e2e8f0;border-radius:7px;overflow:hidden;display:flex}.bar>span{display:block;height:100%;background:var(--accent)}
        .hero .bar{height:20px;border-radius:10px}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px;background:none;border:0;padding:0}
        .card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
        .card .label{color:var(--muted);font-size:13px;text-transform:uppercase;letter-spacing:.04em}.card .value{font-size:26px;font-weight:700;margin:2px 0}
        .card .sub{color:var(--muted);font-size:12.5px}
        table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
        th{font-size:12.5px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.03em}
        .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.nowrap{white-space:nowrap}tr.zero td{color:#94a3b8}tr.total td{font-weight:700}
        .progress-cell{min-width:240px}.progress-cell .small{margin-top:4px}
        .pill{display:inline-block;border-radius:999px;padding:1px 8px;margin:1px 0;font-size:12px;color:#fff;background:var(--c)}
        .dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:8px}
        .badge{display:inline-block;border-radius:6px;padding:0 7px;font-size:12px;background:#e2e8f0;color:#334155}
        .badge.ok{background:#dcfce7;color:#166534}.badge.bad{background:#fee2e2;color:#991b1b}.badge.busy{background:#dbeafe;color:#1e40af}
        .meta{display:inline-block;background:#f1f5f9;border-radius:4px;padding:0 5px;margin-right:3px;font-family:ui-monospace,monospace;font-size:12px}
        .path{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}
        pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:12.5px;color:#991b1b}
        .warn{color:#b45309}.reasons{margin:0;padding-left:18px;font-size:12.5px}.chart{width:100%;height:auto}.grid{stroke:#e2e8f0}.axis{font-size:11px;fill:#64748b}
        .barfill{fill:#93c5fd}.line{fill:none;stroke:#16a34a;stroke-width:2.5}
        .legend{font-size:12.5px;color:var(--muted);margin:4px 0 0}.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-1px;margin:0 4px 0 12px}
        .swatch.bars{background:#93c5fd}.swatch.total{background:#16a34a}
        footer{text-align:center;font-size:12px;margin-top:24px}
        .login{max-width:420px;margin-top:10vh}.login form{display:flex;gap:8px;flex-wrap:wrap;align-items:flex-end}
        .login input{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px}.login button{font:inherit;padding:6px 14px;border-radius:6px;border:0;background:var(--accent);color:#fff}
        """
}
