import PipelineCore
import PostgresNIO

extension IngestCatalog {
    /// The name of the user `label` belongs to when that is someone other than `ownerID`; nil when the source does
    /// not exist, is ownerless, or is theirs already.
    public func otherOwner(ofSource label: String, than ownerID: Int64) async throws -> String? {
        try await CatalogError.wrapping("look up the source's owner") {
            let rows = try await client.catalogQuery("""
                SELECT u.name FROM sources s JOIN users u ON u.id = s.owner_id WHERE s.label = \(label) AND s.owner_id <> \(ownerID)
                """, logger: logger)
            for try await name in rows.decode(String.self) { return name }
            return nil
        }
    }

    /// Gives an ownerless source its owner; a source that has one keeps it.
    public func giveOwnerIfNone(sourceID: Int64, ownerID: Int64) async throws {
        try await CatalogError.wrapping("record the source's owner") {
            _ = try await client.catalogQuery("UPDATE sources SET owner_id = \(ownerID) WHERE id = \(sourceID) AND owner_id IS NULL", logger: logger)
        }
    }
}
