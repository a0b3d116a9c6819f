import Foundation
import Logging
import PostgresNIO

/// What the catalog says about a source for the uploader's local index, in one query (see
/// ``CatalogSchema/uploadIndexToken``): an index is trusted only while all of it is as the index recorded.
public struct UploadIndexToken: Sendable, Hashable {
    /// The catalog's identity (a UUID made with it): another database or a rebuilt catalog has another.
    public var catalogIdentity: String
    /// Raised by triggers on every change to the source's rows that could change a look-up, except new rows.
    public var epoch: Int64
    /// The source's rows and the highest row id: new rows change both.
    public var rows: Int64
    public var maxRowID: Int64

    public init(catalogIdentity: String, epoch: Int64, rows: Int64, maxRowID: Int64) {
        self.catalogIdentity = catalogIdentity
        self.epoch = epoch
        self.rows = rows
        self.maxRowID = maxRowID
    }
}

extension IngestCatalog {
    /// The source's token now, and how many of its rows have an id above `since` (the rows added since a token
    /// with that `maxRowID` was read: at the end of a run, more than the run added means someone else wrote too).
    /// Nil when the source does not exist.
    public func uploadIndexToken(sourceID: Int64, rowsAbove since: Int64 = .max) async throws -> (token: UploadIndexToken, rowsAbove: Int64)? {
        try await CatalogError.wrapping("read the source's index token") {
            let rows = try await client.catalogQuery("""
                SELECT (SELECT id::text FROM catalog_identity), s.catalog_epoch, f.rows, f.max_id, f.above
                FROM sources s,
                    LATERAL (SELECT count(*) AS rows, coalesce(max(id), 0) AS max_id, count(*) FILTER (WHERE id > \(since)) AS above
                             FROM objectstoragefiles WHERE source_id = s.id) f
                WHERE s.id = \(sourceID)
                """, logger: logger)
            for try await (identity, epoch, count, maxID, above) in rows.decode((String, Int64, Int64, Int64, Int64).self) {
                return (UploadIndexToken(catalogIdentity: identity, epoch: epoch, rows: count, maxRowID: maxID), above)
            }
            return nil
        }
    }
}
