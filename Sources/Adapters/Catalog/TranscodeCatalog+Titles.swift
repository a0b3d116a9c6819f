import Foundation
import PostgresNIO

/// A DVD title set holding several titles is transcoded title by title, each title's transcode recorded as a row of
/// its own as soon as it is verified (`details.transcode_of` names part 1, `details.dvd_title` the title's number),
/// while part 1 stays leased. A worker killed between two titles leaves the catalog consistent (part 1 leased, the
/// titles done so far `staged` on their way to the archive); the next claim of part 1 finds them here and only does
/// the rest, so no title is recorded twice.
extension TranscodeCatalog {
    /// A title's transcode already recorded for raw row `item` (by an earlier claim, or this one).
    public struct RecordedTitle: Sendable, Hashable {
        public let number: Int
        public let fileID: Int64
        public let path: String
    }

    /// The live title transcodes recorded beside `item`, by title number.
    public func recordedTitles(of item: TranscodeItem) async throws -> [Int: RecordedTitle] {
        try await CatalogError.wrapping("read the titles already transcoded") {
            let rows = try await client.catalogQuery("""
                SELECT (f.details->>'dvd_title')::int, f.id, f.path
                FROM objectstoragefiles f
                WHERE f.source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(item.job.fileID))
                  AND f.details ? 'dvd_title' AND (f.details->>'transcode_of')::bigint = \(item.job.fileID) AND f.deleted_at IS NULL
                ORDER BY f.id
                """, logger: logger)
            var titles: [Int: RecordedTitle] = [:]
            for try await (number, id, path) in rows.decode((Int, Int64, String).self) where titles[number] == nil {
                titles[number] = RecordedTitle(number: number, fileID: id, path: path)
            }
            return titles
        }
    }

    /// Records title `number`'s verified transcode as a row of its own beside `item` (see `insertCompanion`), with
    /// `details.dvd_title` = `number`. One transaction, fenced by the lease on `item`, which stays as it is: the
    /// raw row goes on only when every title was tried (`recordTranscoded`). Returns the row (the one recorded
    /// before, should there be one) and whether it is new, or nil when the lease was lost.
    public func recordTitleTranscode(
        _ item: TranscodeItem, workerID: UUID, number: Int, resultKey: String, resultSize: Int64, resultHash: String, path: String, name: String,
        detailsJSON: String
    ) async throws -> (title: RecordedTitle, inserted: Bool)? {
        try await CatalogError.wrapping("record a title's transcode") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var held = false
                for try await _ in try await connection.query("""
                    SELECT id FROM objectstoragefiles
                    WHERE id = \(item.job.fileID) AND lease_owner = \(workerID) AND lease_token = \(item.job.leaseToken)
                    FOR UPDATE
                    """, logger: logger).decode(Int64.self) {
                    held = true
                }
                guard held else { return nil }
                let existing = try await connection.query("""
                    SELECT id, path FROM objectstoragefiles
                    WHERE source_id = (SELECT source_id FROM objectstoragefiles WHERE id = \(item.job.fileID))
                      AND details ? 'dvd_title' AND (details->>'dvd_title')::int = \(number)
                      AND (details->>'transcode_of')::bigint = \(item.job.fileID) AND deleted_at IS NULL
                    ORDER BY id LIMIT 1
                    """, logger: logger)
                for try await (id, recordedPath) in existing.decode((Int64, String).self) {
                    return (RecordedTitle(number: number, fileID: id, path: recordedPath), false)
                }
                let details = String(decoding: try JSONSerialization.data(withJSONObject: ["dvd_title": number]), as: UTF8.self)
                let (id, recordedPath) = try await insertCompanion(
                    of: item.job.fileID, connection: connection, path: path, name: name, resultKey: resultKey, resultSize: resultSize,
                    resultHash: resultHash, detailsJSON: detailsJSON)
                _ = try await connection.query(
                    "UPDATE objectstoragefiles SET details = details || \(details)::jsonb WHERE id = \(id)", logger: logger)
                return (RecordedTitle(number: number, fileID: id, path: recordedPath), true)
            }
        }
    }
}
