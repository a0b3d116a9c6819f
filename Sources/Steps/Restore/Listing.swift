import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import SourceReading

/// `ls`, `sources` and `restore-status` output: an aligned table for people, or one JSON object per line.
public enum Listing {
    public enum Style: Sendable { case table, jsonLines }

    /// Rows padded to their columns' widths (the last column is not padded).
    public static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }

    public static func jsonLine(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func date(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        return RestoreReport.dateText(Date(timeIntervalSince1970: seconds.rounded(.down)))
    }

    // MARK: ls

    /// What is archived, where, and its state: one line per file version.
    public static func files(_ locations: [CatalogFileLocation], pattern: String?, style: Style) throws -> [String] {
        let matcher: ExcludePattern?
        do {
            matcher = try pattern.map { try ExcludePattern($0) }
        } catch {
            throw RestoreError(.invalidRequest, "path pattern: \(error)")
        }
        let selected = locations.filter { location in
            guard let matcher else { return true }
            let raw = location.rawPathHex.flatMap(RestorePlanner.bytes(hex:)) ?? Array(location.path.utf8)
            return matcher.matches(RawPath(bytes: raw), isDirectory: false)
        }
        switch style {
        case .jsonLines:
            return selected.map { location in
                var object: [String: Any] = [
                    "source": location.sourceLabel, "path": location.path, "version": location.version, "latest": location.isLatestVersion,
                    "kind": location.kind, "state": location.state, "size": location.originalSize, "id": location.fileID,
                ]
                object["sha256"] = location.originalHash
                object["error"] = location.error
                object["degraded"] = location.degraded
                if location.state == "duplicate" { object["duplicate_of"] = location.holderID }
                if location.holderState == "archived" {
                    object["archive_key"] = location.archiveKey
                    object["bundle_id"] = location.bundleID
                    object["bundle_offset"] = location.bundleOffset
                    object["stored_size"] = location.storedSize
                    object["stored_sha256"] = location.storedHash
                    object["storage_class"] = location.bundleStorageClass
                    object["transcoded"] = location.transcoded
                    object["archived_at"] = date(location.archivedAt)
                }
                return jsonLine(object)
            }
        case .table:
            let rows = selected.map { location -> [String] in
                let state = location.state == "duplicate" ? "duplicate of \(location.holderID.map(String.init) ?? "?")" : location.state
                var place = "-"
                if location.holderState == "archived", let key = location.archiveKey {
                    place = location.bundleID != nil ? "\(key) @\(location.bundleOffset ?? 0)" : key
                    if location.transcoded { place += " (transcoded)" }
                }
                let path = "\(location.sourceLabel)/\(location.path)" + (location.isLatestVersion ? "" : " (v\(location.version))")
                return [state + (location.degraded ? " DEGRADED" : ""), Format.bytes(location.originalSize), path, place]
            }
            return table(["STATE", "SIZE", "PATH", "ARCHIVED AS"], rows) + ["\(selected.count) files"]
        }
    }

    // MARK: sources

    /// "archived" only when the upload finished and every file is archived or a duplicate of archived content
    /// (`duplicates` counts only those; a duplicate of a file on its way is in progress, of a lost one failed).
    public static func state(of source: SourceSummary) -> String {
        // Never "archived" before an upload run finished (one may be running, or was interrupted) or while the
        // last run could not read all of the source.
        if source.finishedAt == nil { return "upload not finished" }
        if source.walkProblems > 0 { return "incomplete (\(source.walkProblems) path\(source.walkProblems == 1 ? "" : "s") not read)" }
        if source.files == 0 { return "empty" }
        // Spooled files are read but not in the cloud yet: never archived, whatever else is.
        if source.spooled > 0 { return "read, waiting to send (\(source.spooled) file\(source.spooled == 1 ? "" : "s") in a spool)" }
        if source.inProgress > 0 { return "in progress" }
        if source.failed > 0 || source.unreadable > 0 { return "archived with failures" }
        return "archived"
    }

    /// For a source with files in spools: "read 120, sent 80, archived 40; 40 waiting in /srv/spool on nas: sender
    /// paused (until 01:00: …)".
    static func spoolProgress(_ source: SourceSummary, waiting: [UUID: Int64], spools: [SpoolSenderStatus]) -> String? {
        guard !waiting.isEmpty else { return nil }
        let waits = waiting.sorted { $0.key.uuidString < $1.key.uuidString }.map { spoolID, files in
            let spool = spools.first { $0.spoolID == spoolID }
            return "\(files) waiting in \(spool.map { "\($0.path) on \($0.host)" } ?? "a spool no longer listed"): \(spool?.said ?? "no sender has run")"
        }
        return "read \(source.files), sent \(source.files - source.spooled), archived \(source.archived + source.duplicates); " + waits.joined(separator: "; ")
    }

    /// `waiting`: per source, the spools its spooled files wait in (`SpoolCatalog.waitingBySource`), and `spools` their
    /// senders, so that a source waiting to be sent says what its sender is doing.
    public static func sources(_ sources: [SourceSummary], style: Style, waiting: [Int64: [UUID: Int64]] = [:], spools: [SpoolSenderStatus] = []) -> [String] {
        switch style {
        case .jsonLines:
            return sources.map { source in
                jsonLine([
                    "sent": source.files - source.spooled,
                    "sender": spoolProgress(source, waiting: waiting[source.id] ?? [:], spools: spools) ?? NSNull(),
                    "label": source.label, "id": source.id, "state": state(of: source), "files": source.files, "bytes": source.bytes,
                    "stored_bytes": source.storedBytes, "archived": source.archived, "duplicates": source.duplicates,
                    "in_progress": source.inProgress, "spooled": source.spooled, "failed": source.failed, "unreadable": source.unreadable, "deleted": source.deleted,
                    "metadata": (try? JSONSerialization.jsonObject(with: Data(source.metadataJSON.utf8))) ?? [:],
                    "note": source.note ?? NSNull(), "started_at": RestoreReport.dateText(source.startedAt),
                    "finished_at": source.finishedAt.map(RestoreReport.dateText) ?? NSNull(),
                    "walk_problems": source.walkProblems, "walk_problem_paths": source.walkProblemPaths,
                    "encryption": encryptionText(source) ?? NSNull(), "videos_not_transcoded": source.videosNotTranscoded,
                ])
            }
        case .table:
            let rows = sources.map { source in
                [source.label, state(of: source), String(source.files), Format.bytes(source.bytes), String(source.archived), String(source.duplicates),
                 String(source.inProgress), String(source.failed + source.unreadable), Format.bytes(source.storedBytes)]
            }
            var lines = table(["LABEL", "STATE", "FILES", "SIZE", "ARCHIVED", "DUPLICATES", "IN PROGRESS", "FAILED", "STORED"], rows)
            for source in sources {
                if let progress = spoolProgress(source, waiting: waiting[source.id] ?? [:], spools: spools) { lines.append("\(source.label): \(progress)") }
            }
            for source in sources {
                guard let encryption = encryptionText(source) else { continue }
                lines.append("\(source.label): encrypted (\(encryption))" + (source.videosNotTranscoded > 0
                    ? "; \(source.videosNotTranscoded) video\(source.videosNotTranscoded == 1 ? "" : "s") archived as recorded, not transcoded (the cloud cannot read encrypted files)"
                    : ""))
            }
            for source in sources where source.walkProblems > 0 {
                lines.append("\(source.label): \(source.walkProblems) path\(source.walkProblems == 1 ? "" : "s") could not be read by the last upload (files may be missing):")
                lines += source.walkProblemPaths.map { "  \($0)" }
                if source.walkProblems > Int64(source.walkProblemPaths.count) {
                    lines.append("  … \(source.walkProblems - Int64(source.walkProblemPaths.count)) more")
                }
            }
            return lines
        }
    }

    /// "age, to 1 recipient (age1qyqszqgp…)" for an encrypted source.
    static func encryptionText(_ source: SourceSummary) -> String? {
        guard let json = source.encryptionJSON else { return nil }
        return (try? SourceEncryptionRecord.decode(json))?.summary ?? "age"
    }

    // MARK: restore-status

    /// Refreshes each pending request from the archive (HEAD) and lists the requests still pending or readable.
    public static func restoreStatus(catalog: RestoreCatalog, archive: any ObjectStore, style: Style) async throws -> [String] {
        let listed = try await RestoreStatusRefresh.run(catalog: catalog, archive: archive).filter { $0.state != "expired" }
        switch style {
        case .jsonLines:
            return listed.map { request in
                jsonLine([
                    "key": request.archiveKey, "state": request.state, "tier": request.tier, "days": request.days,
                    "storage_class": request.storageClass ?? NSNull(), "bytes": request.sizeBytes ?? NSNull(),
                    "requested_at": RestoreReport.dateText(request.requestedAt), "expected_ready_at": RestoreReport.dateText(request.expectedReadyAt),
                    "restored_until": request.restoredUntil.map(RestoreReport.dateText) ?? NSNull(), "requested_for": request.requestedFor ?? NSNull(),
                ])
            }
        case .table:
            let pending = listed.filter { $0.state == "pending" }
            let rows = listed.map { request in
                [request.state == "pending" ? "pending" : "ready until " + (request.restoredUntil.map(RestoreReport.dateText) ?? "?"),
                 request.tier, request.sizeBytes.map(Format.bytes) ?? "-", RestoreReport.dateText(request.requestedAt),
                 request.state == "pending" ? RestoreReport.dateText(request.expectedReadyAt) : "-", request.archiveKey]
            }
            let summary = pending.isEmpty ? "no restore is pending" : "\(pending.count) restores pending; the last expected by \(RestoreReport.dateText(pending.map(\.expectedReadyAt).max()!))"
            return (listed.isEmpty ? [] : table(["STATE", "TIER", "SIZE", "REQUESTED", "EXPECTED READY", "KEY"], rows)) + [summary]
        }
    }
}
