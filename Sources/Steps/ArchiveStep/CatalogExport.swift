import ArchiveFormat
import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import SystemIO

/// The catalog as gzip-compressed JSON lines in the archive bucket (STANDARD class), so that the index survives
/// losing the database: `catalog/catalog.jsonl.gz` holds all of it as of its export, and
/// `catalog/changes/<catalog id>/<number>.jsonl.gz` the rows changed since (see `CatalogExportFormat`). Most
/// exports write only the changes, so their cost follows what changed, not the catalog's size; once the changes
/// reach a fraction of the whole (`CatalogExportPolicy`), the whole is written again and the changes before it
/// removed. Rows stream from Postgres into a local gzip file; memory stays flat however large the catalog.
public struct CatalogExport: Sendable {
    public static let key = CatalogExportFormat.key
    public static let format = CatalogExportFormat.format

    /// What one export wrote.
    public struct Written: Sendable, Hashable {
        public var key: String
        public var rows: Int
        public var whole: Bool
    }

    let client: PostgresClient
    let archive: any ObjectStore
    let workDirectory: String
    let policy: CatalogExportPolicy
    let logger: Logger
    /// For crash tests only (`ArchiveCrashPoint.exportUploaded`).
    let crashAfterUpload: Bool

    public init(
        client: PostgresClient, archive: any ObjectStore, workDirectory: String, policy: CatalogExportPolicy = CatalogExportPolicy(), logger: Logger,
        crashAfterUpload: Bool = false
    ) {
        self.client = client
        self.archive = archive
        self.workDirectory = workDirectory
        self.policy = policy
        self.logger = logger
        self.crashAfterUpload = crashAfterUpload
    }

    /// Writes and uploads the export (whole or changes, by the policy); nil when another archiver's export held
    /// the lock. With `waitingForOthers` it waits for a running export instead, so that the export it writes is
    /// the latest.
    @discardableResult
    public func run(waitingForOthers: Bool = false) async throws -> Written? {
        try await ExportCatalog(client: client, logger: logger).withExportLock(waitingForOthers: waitingForOthers, policy: policy) { export in
            let written = try await write(export)
            if written.whole { await removeChanges(before: export.plan) }
            return written
        }
    }

    private func write(_ export: ExportCatalog.Export) async throws -> Written {
        let plan = export.plan
        let path = workDirectory + "/catalog-\(UUID().uuidString.lowercased()).jsonl.gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try GzipFileWriter(creating: path)
        var rows = 0
        var pending: [UInt8] = []
        func append(_ line: String) async throws {
            pending += Array(line.utf8)
            pending.append(UInt8(ascii: "\n"))
            if pending.count >= 1 << 20 {
                let chunk = pending
                pending.removeAll(keepingCapacity: true)
                try await blocking { try writer.write(chunk) }
            }
        }
        // The header first: `until_xmin` is the snapshot's, known before the first row.
        let untilXmin = try await export.streamRows(onSnapshot: { xmin in
            var header: [String: Any] = [
                "type": plan.whole ? "export" : "export-changes", "format": Self.format, "exported_at": ISO8601DateFormatter().string(from: Date()),
                "program_version": PipelineVersion.current, "number": plan.number, "catalog_id": plan.catalogID.uuidString.lowercased(),
                "until_xmin": xmin,
            ]
            if let since = plan.sinceXmin { header["since_xmin"] = since }
            if let base = plan.baseNumber { header["base_number"] = base }
            try await append(String(decoding: try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        }) { line in
            try await append(line)
            rows += 1
        }
        let rest = pending
        try await blocking {
            try writer.write(rest)
            try writer.finish()
        }
        let key = plan.whole ? Self.key : CatalogExportFormat.changesKey(catalogID: plan.catalogID, number: plan.number)
        _ = try await archive.put(key, from: .file(path), options: PutOptions(storageClass: .standard, contentType: "application/gzip"))
        if crashAfterUpload { kill(getpid(), SIGKILL) }
        try await export.recordDone(untilXmin: untilXmin, rows: rows)
        return Written(key: key, rows: rows, whole: plan.whole)
    }

    /// After a whole export is recorded: the changes exports it replaces (earlier numbers, or another catalog's)
    /// are removed. Best effort: a change left behind is never read (its number is below the whole one's).
    private func removeChanges(before plan: CatalogExportPlan) async {
        do {
            var stale: [String] = []
            for try await object in archive.listAll(prefix: CatalogExportFormat.changesPrefix) {
                guard let (catalogID, number) = CatalogExportFormat.parseChangesKey(object.key) else { continue }
                if catalogID != plan.catalogID || number < plan.number { stale.append(object.key) }
            }
            let failures = await archive.delete(keys: stale)
            if let (key, error) = failures.first {
                logger.warning("old catalog export changes not removed (they are never read again)", metadata: ["storage.key": "\(key)", "error": "\(error)"])
            }
        } catch {
            logger.warning("old catalog export changes not removed (they are never read again)", metadata: ["error": "\(error)"])
        }
    }
}
