import Foundation
import Logging
import PostgresNIO

/// One live file of a source as the audit sees it: its own state and the row holding its content, followed
/// through any chain of duplicates (`content_holder`), with where that content is stored.
public struct AuditedFile: Sendable, Hashable {
    public var fileID: Int64
    public var path: String
    public var version: Int
    public var state: String
    public var error: String?
    public var holderID: Int64?
    public var holderState: String?
    public var holderDeleted: Bool
    public var holderError: String?
    public var archiveKey: String?
    public var storedSize: Int64?
    public var storedHash: String?
    public var bundleID: Int64?
    public var bundleOffset: Int64?
    public var bundleState: String?
    public var bundleManifestKey: String?
    public var bundleCompression: String?
    public var bundleStoredBytes: Int64?
    public var bundleHash: String?
    public var bundleStorageClass: String?
}

/// A source and whether its upload is complete.
public struct AuditedSource: Sendable, Hashable {
    public var id: Int64
    public var label: String
    public var uploadFinished: Bool
    public var pendingUploads: Int64
    /// Entries the last upload run deliberately did not store (`--exclude`, ignored by git, links, special files).
    public var entriesNotStored: Int64 = 0
    /// What the last upload run could not read of the source (files there may be missing from the catalog).
    public var walkProblems: [WalkProblem] = []
}

/// The audit's queries (`uploader audit`).
public struct AuditCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    /// Where each verdict is kept (`source_audits`).
    public var audits: SourceAudits { SourceAudits(client: client, logger: logger) }

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func sources(label: String?) async throws -> [AuditedSource] {
        try await CatalogError.wrapping("list the sources to audit") {
            let rows = try await client.catalogQuery("""
                SELECT s.id, s.label, s.finished_at IS NOT NULL, (SELECT count(*) FROM pending_uploads p WHERE p.source_id = s.id),
                       s.files_skipped
                FROM sources s WHERE \(label)::text IS NULL OR s.label = \(label) ORDER BY s.label
                """, logger: logger)
            var result: [AuditedSource] = []
            for try await (id, label, finished, pending, notStored) in rows.decode((Int64, String, Bool, Int64, Int64).self) {
                result.append(AuditedSource(id: id, label: label, uploadFinished: finished, pendingUploads: pending, entriesNotStored: notStored))
            }
            for index in result.indices {
                result[index].walkProblems = try await WalkProblems.read(label: result[index].label, client: client, logger: logger)
            }
            return result
        }
    }

    /// Every live (not deleted) row of the source, with its content holder and the holder's bundle.
    public func files(sourceID: Int64) async throws -> [AuditedFile] {
        try await CatalogError.wrapping("list the source's files to audit") {
            try await client.withCatalogConnection { connection in
                let rows = try await connection.stream("""
                    SELECT f.id, f.path, f.version, f.state, f.error, h.id, h.state, h.deleted_at IS NOT NULL, h.error, h.archive_key,
                           h.stored_size_bytes, h.stored_hash, h.bundle_id, h.bundle_offset, b.state, b.manifest_key, b.compression,
                           b.stored_bytes, b.hash, b.storage_class
                    FROM objectstoragefiles f
                    LEFT JOIN objectstoragefiles h ON h.id = CASE WHEN f.state = 'duplicate' THEN content_holder(f.id) ELSE f.id END
                    LEFT JOIN bundles b ON b.id = h.bundle_id
                    WHERE f.source_id = \(sourceID) AND f.deleted_at IS NULL
                    ORDER BY f.path, f.version
                    """, logger: logger)
                var result: [AuditedFile] = []
                for try await row in rows.decode((Int64, String, Int, String, String?, Int64?, String?, Bool?, String?, String?,
                                                  Int64?, String?, Int64?, Int64?, String?, String?, String?, Int64?, String?, String?).self) {
                    result.append(AuditedFile(
                        fileID: row.0, path: row.1, version: row.2, state: row.3, error: row.4, holderID: row.5, holderState: row.6,
                        holderDeleted: row.7 ?? false, holderError: row.8, archiveKey: row.9, storedSize: row.10, storedHash: row.11,
                        bundleID: row.12, bundleOffset: row.13, bundleState: row.14, bundleManifestKey: row.15, bundleCompression: row.16,
                        bundleStoredBytes: row.17, bundleHash: row.18, bundleStorageClass: row.19))
                }
                return result
            }
        }
    }
}
