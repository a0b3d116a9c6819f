import Foundation
import PostgresNIO

/// The disc loop's questions about sources (`uploader discs`): is a label taken, was this disc seen before, which
/// source holds a label. No table of its own: a disc's identity is in its sources' metadata (`disc_id`,
/// `disc_label`).
extension IngestCatalog {
    /// Metadata keys the disc loop writes on each source it opens.
    public enum DiscMetadata {
        /// SHA-256 of the disc's volume descriptors and size (`DiscVolume.identity`).
        public static let identity = "disc_id"
        /// The label the loop chose for the disc (its image source, when kept as well, is named after it).
        public static let label = "disc_label"
    }

    /// Whether a source with this label exists.
    public func sourceExists(label: String) async throws -> Bool {
        try await sourceID(label: label) != nil
    }

    /// The id of the source with this label, if any.
    public func sourceID(label: String) async throws -> Int64? {
        try await CatalogError.wrapping("look up the source") {
            let rows = try await client.catalogQuery("SELECT id FROM sources WHERE label = \(label)", logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
    }

    /// The label the disc loop gave this disc before (the same volume descriptors and size), if it saw it.
    public func discLabel(identity: String) async throws -> String? {
        try await CatalogError.wrapping("look up the disc") {
            let rows = try await client.catalogQuery("""
                SELECT metadata->>\(DiscMetadata.label) FROM sources
                WHERE metadata->>\(DiscMetadata.identity) = \(identity) AND metadata ? \(DiscMetadata.label)
                ORDER BY id LIMIT 1
                """, logger: logger)
            for try await label in rows.decode(String?.self) { return label }
            return nil
        }
    }
}
