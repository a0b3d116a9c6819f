import ArchiveFormat
import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import SystemIO

public struct RebuildReport: Sendable {
    public var exportFound = false
    public var exportedAt: String?
    public var fromExport: ExportImportCounts?
    /// Changes exports read after the whole one (`catalog/changes/…`).
    public var exportChangesRead = 0
    public var bundlesFromManifests = 0
    public var filesFromManifests = 0
    public var filesCompletedFromArchive = 0
    /// What could not be recovered, one line each.
    public var unrecovered: [String] = []

    public var exitCode: Int32 { unrecovered.isEmpty ? 0 : 1 }

    public var summaryLines: [String] {
        var lines: [String] = []
        if let counts = fromExport {
            let changes = exportChangesRead > 0 ? ", with \(exportChangesRead) changes export\(exportChangesRead == 1 ? "" : "s")" : ""
            lines.append("catalog export (\(exportedAt ?? "undated")\(changes)): \(counts.sources) sources, \(counts.files) files, \(counts.bundles) bundles, "
                + "\(counts.deleteRequests) delete requests")
            if counts.inFlight > 0 {
                lines.append("  \(counts.inFlight) files were not archived yet when it was written: recorded as failed unless found in the archive below")
            }
        } else {
            lines.append("no catalog export in the archive: everything comes from the bundle manifests")
        }
        lines.append("bundle manifests: \(bundlesFromManifests) bundles and \(filesFromManifests) files newer than the export recovered")
        lines.append("files stored alone: \(filesCompletedFromArchive) files found archived after the export")
        if unrecovered.isEmpty {
            lines.append("everything in the archive is catalogued again")
        } else {
            lines.append("NOT RECOVERED (\(unrecovered.count)):")
            lines += unrecovered.map { "  \($0)" }
        }
        return lines
    }
}

/// `uploader rebuild-catalog`: fills an empty database from the archive bucket alone — the catalog export first,
/// then every bundle manifest (both STANDARD class, no restore needed) for what is newer, then the files stored
/// alone (their object metadata names the file id and hashes) — and says what it could not recover.
public struct RebuildRun: Sendable {
    let catalog: RebuildCatalog
    let archive: any ObjectStore
    let workDirectory: String
    let progress: RestoreProgress
    let logger: Logger
    /// `--identity` / `--passphrase`: what opens encrypted sources, whose names and paths the archive holds sealed.
    let keyring: SourceKeyring

    public init(catalog: RebuildCatalog, archive: any ObjectStore, workDirectory: String, progress: RestoreProgress, logger: Logger,
                keyring: SourceKeyring = SourceKeyring()) {
        self.keyring = keyring
        self.catalog = catalog
        self.archive = archive
        self.workDirectory = workDirectory
        self.progress = progress
        self.logger = logger
    }

    public func run() async throws -> RebuildReport {
        guard try await catalog.isEmpty() else {
            throw RestoreError(.catalog, "the database is not empty: rebuild-catalog only fills a new, empty database (point DATABASE_URL at one)")
        }
        var objects: [String: ObjectSummary] = [:]
        for try await object in archive.listAll() { objects[object.key] = object }
        await progress.say("\(objects.count) objects in \(archive.location)")
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)

        let encrypted = EncryptedRebuild(keyring: keyring)
        return try await catalog.withTransaction { session in
            var report = RebuildReport()
            if objects[CatalogExportFormat.key] != nil {
                report.exportFound = true
                try await importExport(session, objects: objects, report: &report)
                // New rows from manifests must not take ids the export used.
                try await session.resetSequences()
                encrypted.learn(try await session.encryptedSources())
            }
            try await recoverBundles(session, objects: objects, encrypted: encrypted, report: &report)
            try await recoverSingles(session, objects: objects, encrypted: encrypted, report: &report)
            // Inside the transaction: keys that do not open an encrypted source leave the database empty.
            try await unsealAll(session, encrypted: encrypted)
            for (key, files) in try await session.markMissing(present: objects.keys) {
                report.unrecovered.append("\(key): catalogued for \(files) files but missing from the archive; those files are marked failed")
            }
            try await session.resetSequences()
            await progress.event("summary", [
                "export_found": report.exportFound, "export_changes_read": report.exportChangesRead, "sources": report.fromExport?.sources ?? 0, "files": report.fromExport?.files ?? 0,
                "bundles": report.fromExport?.bundles ?? 0, "bundles_from_manifests": report.bundlesFromManifests,
                "files_from_manifests": report.filesFromManifests, "files_completed_from_archive": report.filesCompletedFromArchive,
                "unrecovered": report.unrecovered, "exit_code": Int(report.exitCode),
            ])
            return report
        }
    }

    /// The whole export, then the changes exports of the same catalog written after it, in order (a later line
    /// for a row replaces an earlier one). A changes export that does not continue from what was read before it
    /// (one is missing) is applied all the same and said: rows changed in the gap come only from the manifests.
    func importExport(_ session: RebuildSession, objects: [String: ObjectSummary], report: inout RebuildReport) async throws {
        let header = try await stageExportFile(CatalogExportFormat.key, type: "export", session: session)
        report.exportedAt = header["exported_at"] as? String
        if let catalogID = (header["catalog_id"] as? String).flatMap(UUID.init(uuidString:)), let baseNumber = Self.int64(header["number"]),
           var reachedXmin = (header["until_xmin"] as? String).flatMap(UInt64.init) {
            let changes = objects.keys.compactMap { key -> (Int64, String)? in
                guard let (id, number) = CatalogExportFormat.parseChangesKey(key), id == catalogID, number > baseNumber else { return nil }
                return (number, key)
            }.sorted { $0.0 < $1.0 }
            for (number, key) in changes {
                let changesHeader = try await stageExportFile(key, type: "export-changes", session: session)
                let since = (changesHeader["since_xmin"] as? String).flatMap(UInt64.init) ?? 0
                if since > reachedXmin {
                    report.unrecovered.append("\(key): the catalog export's changes before number \(number) are missing; rows changed then come from the bundle manifests only")
                }
                reachedXmin = max(reachedXmin, (changesHeader["until_xmin"] as? String).flatMap(UInt64.init) ?? reachedXmin)
                report.exportChangesRead += 1
                if let exportedAt = changesHeader["exported_at"] as? String { report.exportedAt = exportedAt }
            }
        }
        report.fromExport = try await session.applyExport()
        await progress.say("catalog export read: \(report.fromExport!.files) files" + (report.exportChangesRead > 0 ? " (whole export and \(report.exportChangesRead) changes exports)" : ""))
    }

    /// Downloads one export file, checks its first line (`type` and format) and stages every row; returns that line.
    func stageExportFile(_ key: String, type expectedType: String, session: RebuildSession) async throws -> [String: Any] {
        let path = workDirectory + "/catalog-\(UUID().uuidString.lowercased()).jsonl.gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await saveToFile(try await archive.get(key).body, path: path)
        let reader = try GzipFileReader(path: path)
        guard let first = try reader.nextLine(),
              let header = try JSONSerialization.jsonObject(with: Data(first)) as? [String: Any],
              header["format"] as? String == CatalogExportFormat.format, (header["type"] as? String ?? "export") == expectedType else {
            throw RestoreError(.catalog, "\(key) is not a \(CatalogExportFormat.format) \(expectedType == "export" ? "export" : "changes export")")
        }
        var batches: [String: [String]] = [:]
        while let line = try await blocking({ try reader.nextLine() }) {
            guard let type = Self.type(of: line) else { continue }
            batches[type, default: []].append(String(decoding: line, as: UTF8.self))
            if batches[type]!.count >= 1000 {
                try await session.stage(kind: type, documents: batches[type]!)
                batches[type] = []
            }
        }
        for (type, documents) in batches { try await session.stage(kind: type, documents: documents) }
        return header
    }

    static func int64(_ value: Any?) -> Int64? {
        (value as? NSNumber)?.int64Value
    }

    /// The `type` of an export line, read without decoding the whole object.
    static func type(of line: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { return nil }
        return object["type"] as? String
    }

    func recoverBundles(_ session: RebuildSession, objects: [String: ObjectSummary], encrypted: EncryptedRebuild, report: inout RebuildReport) async throws {
        var known = try await session.bundles()
        for key in objects.keys.sorted() where key.hasPrefix("bundles/") && key.hasSuffix(".manifest.json") {
            let manifest: BundleManifest
            do {
                manifest = try BundleManifest.decode(try await archive.getBytes(key))
            } catch {
                report.unrecovered.append("\(key): a bundle manifest that cannot be read (\(error))")
                continue
            }
            let bundleKey = manifest.bundleKey ?? String(key.dropLast(".manifest.json".count))
            guard let bundleObject = objects[bundleKey] else {
                if known[bundleKey]?.state != "deleted" {
                    report.unrecovered.append("\(key): its bundle \(bundleKey) is missing from the archive; its \(manifest.members.count) files are lost")
                }
                continue
            }
            var bundleID = known[bundleKey]?.id
            let isNew = bundleID == nil
            if isNew {
                bundleID = try await session.insertBundle(
                    id: manifest.bundleID, archiveKey: bundleKey, manifestKey: key, compression: manifest.compression ?? "none",
                    memberCount: manifest.members.count, rawBytes: manifest.members.reduce(0) { $0 + $1.size },
                    storedBytes: manifest.storedBytes ?? bundleObject.size, hash: manifest.storedSHA256,
                    storageClass: bundleObject.storageClassName, createdAt: manifest.createdAt)
                known[bundleKey] = (bundleID!, "archived")
                report.bundlesFromManifests += 1
            }
            let states = try await session.fileStates(ids: manifest.members.map(\.fileID))
            encrypted.learn(Dictionary(uniqueKeysWithValues: (manifest.encryptedSources ?? [:]).compactMap { key, value in Int64(key).map { ($0, value) } }))
            var changed = false
            for member in manifest.members {
                var recovered = RecoveredFile(
                    fileID: member.fileID, sourceLabel: member.sourceLabel, path: member.path,
                    name: member.path.split(separator: "/").last.map(String.init) ?? member.path, version: member.version, kind: member.kind,
                    originalHash: member.originalSHA256, originalSize: member.size, modifiedAt: member.modifiedAt, archiveKey: bundleKey,
                    bundleID: bundleID, bundleOffset: member.offset, storedSize: member.size, storedHash: member.sha256,
                    archivedAt: manifest.createdAt,
                    detailsJSON: member.sha256 == member.originalSHA256 ? #"{"rebuilt_from": "manifest"}"#
                        : #"{"rebuilt_from": "manifest", "original_size_unknown": true, "transcode": {}}"#)
                var encryptedSourceID: Int64?
                if let sealed = member.sealed {
                    guard let (file, sourceID) = try await recoverEncrypted(sealed, encrypted: encrypted, session: session, base: recovered) else {
                        report.unrecovered.append("encrypted file \(member.fileID) in \(bundleKey): its source's encryption record is in no export or manifest")
                        continue
                    }
                    (recovered, encryptedSourceID) = (file, sourceID)
                }
                if let state = states[member.fileID] {
                    if state.state == "archived" { continue }
                    if try await session.markArchived(recovered) {
                        changed = true
                        report.filesFromManifests += 1
                    } else if state.state != "duplicate" {
                        report.unrecovered.append("\(member.sourceLabel)/\(member.path): in \(bundleKey), but the catalog row \(member.fileID) holds other content")
                    }
                } else if try await session.insertArchived(recovered, sourceID: encryptedSourceID != nil ? encryptedSourceID! : session.sourceID(label: member.sourceLabel)) {
                    changed = true
                    report.filesFromManifests += 1
                } else {
                    report.unrecovered.append("\(member.sourceLabel)/\(member.path) version \(member.version): in \(bundleKey), but another row has its id or path")
                }
            }
            if changed && !isNew, let id = bundleID { try await session.markBundleArchived(id: id) }
        }
    }

    /// Files stored alone (`files/…`): their metadata names the file id and hashes. One the export saw on its
    /// way is completed; one nobody knows is listed (its path and source are in no manifest).
    func recoverSingles(_ session: RebuildSession, objects: [String: ObjectSummary], encrypted: EncryptedRebuild, report: inout RebuildReport) async throws {
        let archived = try await session.archivedKeys()
        for (key, object) in objects.sorted(by: { $0.key < $1.key }) where key.hasPrefix("files/") && !key.hasSuffix(".map") {
            guard !archived.contains(key) else { continue }
            let info = try await archive.head(key)
            let metadata = info?.metadata ?? [:]
            let fileID = metadata["file-id"].flatMap(Int64.init)
            if let single = SingleObjectMetadata(headers: metadata) {
                let path = single.path ?? ""
                var recovered = RecoveredFile(
                    fileID: single.fileID, sourceLabel: single.sourceLabel ?? "", path: path,
                    name: path.split(separator: "/").last.map(String.init) ?? path, version: single.version ?? 1,
                    kind: single.kind ?? "regular", originalHash: single.originalSHA256, originalSize: single.originalSize ?? object.size,
                    modifiedAt: single.modifiedAt, archiveKey: key, bundleID: nil, bundleOffset: nil, storedSize: object.size,
                    storedHash: single.sha256, archivedAt: object.lastModified, detailsJSON: #"{"rebuilt_from": "archive object metadata"}"#)
                var encryptedSourceID: Int64?
                if let sealed = single.sealed, let (file, sourceID) = try await recoverEncrypted(sealed, encrypted: encrypted, session: session, base: recovered) {
                    (recovered, encryptedSourceID) = (file, sourceID)
                }
                if let state = try await session.fileStates(ids: [single.fileID])[single.fileID] {
                    if state.state != "archived", try await session.markArchived(recovered) {
                        report.filesCompletedFromArchive += 1
                        continue
                    }
                } else if let sourceID = encryptedSourceID, try await session.insertArchived(recovered, sourceID: sourceID) {
                    report.filesCompletedFromArchive += 1
                    continue
                } else if let label = single.sourceLabel, !path.isEmpty,
                          try await session.insertArchived(recovered, sourceID: try await session.sourceID(label: label)) {
                    // Archived after the export: placed from its own metadata.
                    report.filesCompletedFromArchive += 1
                    continue
                }
            }
            report.unrecovered.append("\(key): \(Format.bytes(object.size)) stored alone with no catalog entry"
                + (fileID.map { " (file id \($0)" } ?? " (")
                + (metadata["original-sha256"].map { ", original SHA-256 \($0))" } ?? ")")
                + "; its path and source were only in the lost database, so it is not catalogued")
        }
    }
}
