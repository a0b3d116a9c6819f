import ArchiveFormat
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO

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
        try await client.withConnection { connection in
            var locked = false
            if waitingForOthers {
                _ = try await connection.query("SELECT pg_advisory_lock(hashtextextended('catalog-export', 0))", logger: logger)
                locked = true
            } else {
                for try await value in try await connection.query("SELECT pg_try_advisory_lock(hashtextextended('catalog-export', 0))", logger: logger).decode(Bool.self) {
                    locked = value
                }
            }
            guard locked else { return 0 }
            let unlock = { _ = try await connection.query("SELECT pg_advisory_unlock(hashtextextended('catalog-export', 0))", logger: logger) }
            do {
                let rows = try await export(on: connection)
                try await unlock()
                return rows
            } catch {
                try? await unlock()
                throw error
            }
        }
    }

    private func export(on connection: PostgresConnection) async throws -> Int {
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
        // Lease bookkeeping and presigned URLs (which carry signatures) stay out of the export.
        let queries: [PostgresQuery] = [
            "SELECT (jsonb_build_object('type', 'source') || to_jsonb(s))::text FROM sources s ORDER BY id",
            "SELECT (jsonb_build_object('type', 'bundle') || (to_jsonb(b) - 'owner'))::text FROM bundles b ORDER BY id",
            """
            SELECT (jsonb_build_object('type', 'file') || (to_jsonb(f) - 'lease_owner' - 'lease_token' - 'lease_expires_at'
                    - 'lease_from_state' - 'signed_download_url' - 'signed_download_url_expires_at' - 'run_after'))::text
            FROM objectstoragefiles f ORDER BY id
            """,
            "SELECT (jsonb_build_object('type', 'delete_request') || to_jsonb(d))::text FROM objectstoragedeletelog d ORDER BY id",
        ]
        for query in queries {
            for try await line in try await connection.query(query, logger: logger).decode(String.self) {
                try await emit(line)
            }
        }
        let rest = pending
        try await blocking {
            try writer.write(rest)
            try writer.finish()
        }
        _ = try await archive.put(Self.key, from: .file(path), options: PutOptions(storageClass: .standard, contentType: "application/gzip"))
        return rows - 1
    }
}
