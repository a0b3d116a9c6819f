import Foundation
import PostgresNIO

/// A source's encryption as the catalog holds it: the record's JSON (nil for a source stored in the clear) and
/// whether the source holds any file yet (a source with files never changes between clear and encrypted).
public struct SourceEncryptionClaim: Sendable, Hashable {
    public let record: String?
    public let holdsFiles: Bool
}

extension IngestCatalog {
    /// The source's encryption record, after setting `proposed` when it has none and holds no file yet. One
    /// transaction with the source row locked, so two uploaders starting the same new source agree on one record.
    public func claimEncryption(sourceID: Int64, proposed: String?) async throws -> SourceEncryptionClaim {
        try await CatalogError.wrapping("read the source's encryption") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var current: (String?, Bool)?
                for try await row in try await connection.query("""
                    SELECT s.encryption::text, EXISTS (SELECT 1 FROM objectstoragefiles f WHERE f.source_id = s.id)
                    FROM sources s WHERE s.id = \(sourceID) FOR UPDATE
                    """, logger: logger).decode((String?, Bool).self) {
                    current = row
                }
                guard let (record, holdsFiles) = current else {
                    throw CatalogError(.migrationFailed, "source \(sourceID) is not in the catalog")
                }
                if record == nil, !holdsFiles, let proposed {
                    _ = try await connection.query("UPDATE sources SET encryption = \(proposed)::jsonb WHERE id = \(sourceID)", logger: logger)
                    return SourceEncryptionClaim(record: proposed, holdsFiles: false)
                }
                return SourceEncryptionClaim(record: record, holdsFiles: holdsFiles)
            }
        }
    }

    /// The encryption records of every source encrypted to this set of recipients, newest first: a new source
    /// reuses the dedupe key of one whose key this machine holds, so that identical files are stored once.
    public func encryptionRecords(recipientsFingerprint: String) async throws -> [String] {
        try await CatalogError.wrapping("find sources encrypted to the same recipients") {
            var records: [String] = []
            for try await record in try await client.catalogQuery("""
                SELECT encryption::text FROM sources WHERE encryption->>'recipients_fingerprint' = \(recipientsFingerprint) ORDER BY id DESC
                """, logger: logger).decode(String.self) {
                records.append(record)
            }
            return records
        }
    }
}
