import ArchiveFormat
import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import SystemIO

/// The whole catalog as gzip-compressed JSON lines in the archive bucket (STANDARD class), so that the index
/// survives losing the database: the first line describes the export, then one line per source, bundle and file.
/// Rows stream from Postgres into a local gzip file; memory stays flat however large the catalog.
public struct CatalogExport: Sendable {
    public static let key = CatalogExportFormat.key
    public static let format = CatalogExportFormat.format

    let client: PostgresClient
    let archive: any ObjectStore
    let workDirectory: String
    let logger: Logger

    public init(client: PostgresClient, archive: any ObjectStore, workDirectory: String, logger: Logger) {
        self.client = client
        self.archive = archive
        self.workDirectory = workDirectory
        self.logger = logger
    }

    /// Writes and uploads the export; returns the number of rows in it. Several archivers may call this at
    /// once: an advisory lock lets one export at a time, and the others skip (returning 0). With
    /// `waitingForOthers` it waits for a running export instead, so that the export it writes is the latest.
    @discardableResult
    public func run(waitingForOthers: Bool = false) async throws -> Int {
        try await ExportCatalog(client: client, logger: logger).withExportLock(waitingForOthers: waitingForOthers) { streamRows in
            try await export(streamRows)
        } ?? 0
    }

    private func export(_ streamRows: (_ emit: (String) async throws -> Void) async throws -> Void) async throws -> Int {
        let path = workDirectory + "/catalog-\(UUID().uuidString.lowercased()).jsonl.gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try GzipFileWriter(creating: path)
        var rows = 0
        var pending: [UInt8] = []
        func emit(_ line: String) async throws {
            pending += Array(line.utf8)
            pending.append(UInt8(ascii: "\n"))
            rows += 1
            if pending.count >= 1 << 20 {
                let chunk = pending
                pending.removeAll(keepingCapacity: true)
                try await blocking { try writer.write(chunk) }
            }
        }
        let header: [String: String] = [
            "type": "export", "format": Self.format, "exported_at": ISO8601DateFormatter().string(from: Date()),
            "program_version": PipelineVersion.current,
        ]
        try await emit(String(decoding: try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        try await streamRows(emit)
        let rest = pending
        try await blocking {
            try writer.write(rest)
            try writer.finish()
        }
        _ = try await archive.put(Self.key, from: .file(path), options: PutOptions(storageClass: .standard, contentType: "application/gzip"))
        return rows - 1
    }
}
