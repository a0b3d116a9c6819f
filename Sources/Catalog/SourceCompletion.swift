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
        /// `failed` or `unreadable` (the row's own state, or that of the row holding its content).
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

    /// Reads the source's rows, following `duplicate_of` to the holder (at most 16 steps, far more than dedupe makes).
    public static func read(label: String, client: PostgresClient, logger: Logger) async throws -> SourceCompletion {
        var completion = SourceCompletion()
        let sources = try await client.query("SELECT finished_at IS NOT NULL FROM sources WHERE label = \(label)", logger: logger)
        for try await finished in sources.decode(Bool.self) { completion.uploadFinished = finished }
        guard completion.uploadFinished != nil else { return completion }
        completion.walkProblems = try await WalkProblems.read(label: label, client: client, logger: logger)
        let rows = try await client.query("""
            WITH RECURSIVE chain (start_id, path, id, state, error, duplicate_of, depth) AS (
                SELECT f.id, f.path, f.id, f.state, f.error, f.duplicate_of, 0
                FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.label = \(label) AND f.deleted_at IS NULL
                UNION ALL
                SELECT c.start_id, c.path, h.id, h.state, h.error, h.duplicate_of, c.depth + 1
                FROM chain c JOIN objectstoragefiles h ON h.id = c.duplicate_of
                WHERE c.state = 'duplicate' AND c.depth < 16
            )
            SELECT start_id, path, state, error FROM chain WHERE state <> 'duplicate' OR depth = 16
            """, logger: logger)
        for try await (fileID, path, state, error) in rows.decode((Int64, String, String, String?).self) {
            completion.files += 1
            switch FileState(rawValue: state) {
            case .archived?:
                completion.done += 1
            case .failed?, .unreadable?, .duplicate?, nil:
                // A chain longer than 16 steps would also land here: better reported than waited on forever.
                completion.notStored.append(NotStored(fileID: fileID, path: path, state: state, error: error))
            default:
                completion.inFlight += 1
            }
        }
        completion.notStored.sort { $0.path < $1.path }
        return completion
    }
}
