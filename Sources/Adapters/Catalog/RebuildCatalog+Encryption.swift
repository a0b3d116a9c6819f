import Foundation
import PostgresNIO

/// A sealed file's placement, opened by `rebuild-catalog --identity`.
public struct UnsealedPlacement: Sendable, Hashable {
    public var fileID: Int64
    public var name: String
    public var path: String
    public var rawPath: [UInt8]?
    public var modifiedAt: Date?

    public init(fileID: Int64, name: String, path: String, rawPath: [UInt8]?, modifiedAt: Date?) {
        self.fileID = fileID
        self.name = name
        self.path = path
        self.rawPath = rawPath
        self.modifiedAt = modifiedAt
    }
}

extension RebuildSession {
    /// The encryption records (JSON) of the sources rebuilt so far, by id.
    public func encryptedSources() async throws -> [Int64: String] {
        try await CatalogError.wrapping("list the encrypted sources") {
            var result: [Int64: String] = [:]
            for try await (id, record) in try await connection.query(
                "SELECT id, encryption::text FROM sources WHERE encryption IS NOT NULL", logger: logger
            ).decode((Int64, String).self) {
                result[id] = record
            }
            return result
        }
    }

    /// The encrypted source with this id, created (with a placeholder label until it is unsealed) when the export
    /// did not have it.
    public func ensureEncryptedSource(id: Int64, record: String) async throws {
        try await CatalogError.wrapping("create the encrypted source") {
            _ = try await connection.query("""
                INSERT INTO sources (id, label, origin, note, encryption)
                VALUES (\(id), \("encrypted-source-\(id)"), 'rebuild-catalog', 'recovered from bundle manifests', \(record)::jsonb)
                ON CONFLICT (id) DO NOTHING
                """, logger: logger)
        }
    }

    /// Every file of an encrypted source that carries a sealed placement: id and the sealed text.
    public func sealedFiles() async throws -> [(fileID: Int64, sealed: String)] {
        try await CatalogError.wrapping("list the sealed files") {
            var result: [(Int64, String)] = []
            for try await row in try await connection.query("""
                SELECT f.id, f.details->>'sealed' FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.encryption IS NOT NULL AND f.details ? 'sealed' ORDER BY f.id
                """, logger: logger).decode((Int64, String).self) {
                result.append(row)
            }
            return result.map { (fileID: $0.0, sealed: $0.1) }
        }
    }

    /// Puts back an encrypted source's label, note, origin and metadata.
    public func unsealSource(id: Int64, label: String, note: String?, origin: String?, metadataJSON: String) async throws {
        try await CatalogError.wrapping("restore the encrypted source's label") {
            _ = try await connection.query("""
                UPDATE sources SET label = \(label), note = \(note), origin = \(origin), metadata = \(metadataJSON)::jsonb WHERE id = \(id)
                """, logger: logger)
        }
    }

    /// Puts back the names, paths and times of encrypted files, in one statement.
    public func unsealFiles(_ placements: [UnsealedPlacement]) async throws {
        try await CatalogError.wrapping("restore the encrypted files' paths") {
            guard !placements.isEmpty else { return }
            _ = try await connection.query("""
                UPDATE objectstoragefiles f SET name = u.name, path = u.path, raw_path = CASE WHEN u.has_raw THEN u.raw_path END,
                    modified_at = CASE WHEN u.has_time THEN u.modified_at END
                FROM unnest(\(placements.map(\.fileID))::bigint[], \(placements.map(\.name))::text[], \(placements.map(\.path))::text[],
                            \(placements.map { $0.rawPath != nil })::boolean[], \(placements.map { ByteBuffer(bytes: $0.rawPath ?? []) })::bytea[],
                            \(placements.map { $0.modifiedAt != nil })::boolean[],
                            \(placements.map { $0.modifiedAt ?? Date(timeIntervalSince1970: 0) })::timestamptz[])
                    AS u(id, name, path, has_raw, raw_path, has_time, modified_at)
                WHERE f.id = u.id
                """, logger: logger)
        }
    }
}
