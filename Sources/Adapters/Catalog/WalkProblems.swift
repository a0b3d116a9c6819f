import Logging
import NIOCore
import PostgresNIO

/// A part of a source that the last upload run could not see: a directory that could not be opened or listed to
/// the end, an entry that could not be inspected. While a source has one, it is not completely archived.
public struct WalkProblem: Sendable, Hashable {
    /// Relative to the source root, as in `objectstoragefiles.path`.
    public let path: String
    /// The path's exact bytes when they are not valid UTF-8.
    public let rawPath: [UInt8]?
    /// What went wrong, one line ("directory not readable: Input/output error").
    public let problem: String

    public init(path: String, rawPath: [UInt8]? = nil, problem: String) {
        self.path = path
        self.rawPath = rawPath
        self.problem = problem
    }

    /// "path: problem", as every reporter lists it.
    public var line: String { "\(path): \(problem)" }
}

/// The walk problems of one source: how many, and the first few.
public struct WalkProblemSummary: Sendable, Hashable {
    public var count: Int64
    /// At most `WalkProblems.sampleLimit`, by path.
    public var sample: [WalkProblem]
}

/// The queries of the `source_problems` table (migration 8).
public enum WalkProblems {
    /// How many problems of a source the status page and `uploader sources` list by path.
    public static let sampleLimit = 20

    /// Replaces the problems recorded for a source with those of the run that just walked it (none: a complete
    /// walk). Called before the run is marked finished, so a finished run always has its problems recorded.
    public static func replace(sourceID: Int64, with problems: [WalkProblem], client: PostgresClient, logger: Logger) async throws {
        try await CatalogError.wrapping("record the walk problems") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                _ = try await connection.query("DELETE FROM source_problems WHERE source_id = \(sourceID)", logger: logger)
                for problem in problems {
                    _ = try await connection.query("""
                        INSERT INTO source_problems (source_id, path, raw_path, problem)
                        VALUES (\(sourceID), \(problem.path), \(problem.rawPath.map { ByteBuffer(bytes: $0) }), \(problem.problem))
                        """, logger: logger)
                }
            }
        }
    }

    /// Every problem of the source with this label, by path.
    public static func read(label: String, client: PostgresClient, logger: Logger) async throws -> [WalkProblem] {
        try await CatalogError.wrapping("read the walk problems") {
            try await client.withCatalogConnection { connection in
                let rows = try await connection.stream("""
                    SELECT p.path, p.raw_path, p.problem FROM source_problems p JOIN sources s ON s.id = p.source_id
                    WHERE s.label = \(label) ORDER BY p.path, p.id
                    """, logger: logger)
                var result: [WalkProblem] = []
                for try await (path, raw, problem) in rows.decode((String, ByteBuffer?, String).self) {
                    result.append(WalkProblem(path: path, rawPath: raw.map { Array($0.readableBytesView) }, problem: problem))
                }
                return result
            }
        }
    }

    /// Per source id: the number of problems and the first `sampleLimit` of them.
    public static func summaries(client: PostgresClient, logger: Logger) async throws -> [Int64: WalkProblemSummary] {
        try await CatalogError.wrapping("summarise the walk problems") {
            let rows = try await client.catalogQuery("""
                SELECT source_id, total, path, problem FROM (
                    SELECT source_id, path, problem, count(*) OVER (PARTITION BY source_id) AS total,
                           row_number() OVER (PARTITION BY source_id ORDER BY path, id) AS position
                    FROM source_problems
                ) numbered WHERE position <= \(sampleLimit) ORDER BY source_id, position
                """, logger: logger)
            var result: [Int64: WalkProblemSummary] = [:]
            for try await (sourceID, total, path, problem) in rows.decode((Int64, Int64, String, String).self) {
                result[sourceID, default: WalkProblemSummary(count: total, sample: [])].sample.append(WalkProblem(path: path, problem: problem))
            }
            return result
        }
    }
}

extension IngestCatalog {
    /// The uploader's end of a run: its walk problems replace the source's earlier ones (see `WalkProblems.replace`).
    public func recordWalkProblems(sourceID: Int64, _ problems: [WalkProblem]) async throws {
        try await WalkProblems.replace(sourceID: sourceID, with: problems, client: client, logger: logger)
    }
}
