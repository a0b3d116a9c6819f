import Logging
import PipelineCore
import PostgresNIO

/// How far one source is from "everything archived", with duplicates judged by the row that holds their content:
/// a duplicate of a file still in flight is not done until that file is archived.
public struct SourceCompletion: Sendable, Hashable {
    /// A file that will not reach the archive without someone acting on it.
    public struct NotStored: Sendable, Hashable {
        public let fileID: Int64
        public let path: String
        /// `failed` or `unreadable` (the row's own state; `failed` also for a duplicate whose holder failed, is
        /// unreadable, was deleted or is missing).
        public let state: String
        public let error: String?
    }

    public var files = 0
    /// Archived, or a duplicate of archived content.
    public var done = 0
    /// Still on its way: staged, transcoding, transcoded, archiving (or a duplicate of such a file).
    public var inFlight = 0
    public var notStored: [NotStored] = []
    /// Whether the uploader finished walking the source (nil: no such source).
    public var uploadFinished: Bool?
    /// What the last upload run could not see (directories not opened or listed to the end, entries not
    /// inspected): files may be missing from `files` altogether.
    public var walkProblems: [WalkProblem] = []

    public var isSettled: Bool { uploadFinished == true && inFlight == 0 }
    public var isFullyArchived: Bool { isSettled && notStored.isEmpty && walkProblems.isEmpty && done == files }

    /// Why the source is not fully archived, one short phrase per reason (empty when it is).
    public var reasonsNotArchived: [String] {
        var reasons: [String] = []
        switch uploadFinished {
        case nil: reasons.append("no such source")
        case false?: reasons.append("the upload has not finished (running, or interrupted: run it again)")
        case true?: break
        }
        if !walkProblems.isEmpty {
            reasons.append("the upload could not read \(walkProblems.count) path\(walkProblems.count == 1 ? "" : "s") of the source (files may be missing)")
        }
        if inFlight > 0 { reasons.append("\(inFlight) file\(inFlight == 1 ? "" : "s") still on the way") }
        if !notStored.isEmpty { reasons.append("\(notStored.count) file\(notStored.count == 1 ? "" : "s") failed or unreadable") }
        if reasons.isEmpty && done != files { reasons.append("\(files - done) of \(files) files not archived") }
        return reasons
    }

    /// Reads the source's rows, judging duplicates by the row holding their content (`EffectiveState`).
    public static func read(label: String, client: PostgresClient, logger: Logger) async throws -> SourceCompletion {
        try await CatalogError.wrapping("read the source's progress") {
            var completion = SourceCompletion()
            let sources = try await client.catalogQuery("SELECT finished_at IS NOT NULL FROM sources WHERE label = \(label)", logger: logger)
            for try await finished in sources.decode(Bool.self) { completion.uploadFinished = finished }
            guard completion.uploadFinished != nil else { return completion }
            completion.walkProblems = try await WalkProblems.read(label: label, client: client, logger: logger)
            // Counted in SQL, per effective state: only the files that will not be stored come back one by one. And
            // only a duplicate's state depends on another row, so the holders' join is made for the duplicates
            // alone (joining every file of a large source made PostgreSQL scan the whole table for the holders).
            let counted = FileState.allCases.filter { $0 != .failed && $0 != .unreadable }.map(\.rawValue)
            let rows = try await client.catalogQuery("""
                WITH parts AS (
                    SELECT f.id, f.path, f.state, f.error
                    FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                    WHERE s.label = \(label) AND f.deleted_at IS NULL AND f.state <> 'duplicate'
                    UNION ALL
                    SELECT f.id, f.path, \(unescaped: EffectiveState.sql), coalesce(f.error, h.error)
                    FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id \(unescaped: EffectiveState.holderJoin)
                    WHERE s.label = \(label) AND f.deleted_at IS NULL AND f.state = 'duplicate')
                SELECT NULL::bigint, NULL::text, state, NULL::text, count(*) FROM parts WHERE state = ANY(\(counted)) GROUP BY state
                UNION ALL
                SELECT id, path, state, error, 1::bigint FROM parts WHERE NOT (state = ANY(\(counted)))
                """, logger: logger)
            for try await (fileID, path, state, error, count) in rows.decode((Int64?, String?, String, String?, Int64).self) {
                completion.files += Int(count)
                switch FileState(rawValue: state) {
                case .archived?, .duplicate?:
                    completion.done += Int(count)
                case .failed?, .unreadable?, nil:
                    completion.notStored.append(NotStored(fileID: fileID ?? 0, path: path ?? "", state: state, error: error))
                default:
                    completion.inFlight += Int(count)
                }
            }
            completion.notStored.sort { $0.path < $1.path }
            return completion
        }
    }
}
