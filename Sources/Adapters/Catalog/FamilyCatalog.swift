import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// A source as the family API lists it.
public struct FamilySource: Sendable, Hashable {
    public let label: String
    /// The owner's name; nil for a source from before accounts (visible to admins only).
    public let owner: String?
    public let files: Int
    /// Files per state (`staged`, `archived`, `duplicate`, …), deleted rows left out.
    public let states: [String: Int]
}

/// Every source's files per state (by source id), read at one moment.
public struct SourceStateCounts: Sendable {
    public let states: [Int64: [String: Int]]
}

/// A file of a source as the family API lists it.
public struct FamilyFile: Sendable, Hashable {
    public let id: Int64
    public let path: String
    public let version: Int
    public let size: Int64
    public let state: String
    /// Whether `GET /files/{id}/download` can stream it now (see `FamilyCatalog.download`).
    public let downloadable: Bool
}

/// The family API's reads, each filtered by who asks *in SQL*: a member sees only sources they own, an admin sees
/// every source. Something the caller may not see is answered exactly like something that does not exist (nil or
/// absent), so that routes can answer 404 for both.
public struct FamilyCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The sources `user` may see, as the catalog has them now (the visibility is never from a snapshot), with
    /// their files per state taken from `counts` (``sourceStateCounts()``; a source missing from it has none yet).
    /// The counts come separately because counting means reading every row of the member's sources, which no index
    /// makes cheap (docs/benchmarks.md): the status server reads them once for everyone and keeps them a few seconds.
    public func sources(visibleTo user: AccountUser, counts: SourceStateCounts) async throws -> [FamilySource] {
        try await CatalogError.wrapping("list the user's sources") {
            let isAdmin = user.role == .admin
            var sources: [FamilySource] = []
            for try await (id, label, owner) in try await client.catalogQuery("""
                SELECT s.id, s.label, u.name FROM sources s LEFT JOIN users u ON u.id = s.owner_id
                WHERE \(isAdmin) OR s.owner_id = \(user.id)
                ORDER BY s.label
                """, logger: logger).decode((Int64, String, String?).self) {
                let states = counts.states[id] ?? [:]
                sources.append(FamilySource(label: label, owner: owner, files: states.values.reduce(0, +), states: states))
            }
            return sources
        }
    }

    /// The labels of the sources `user` owns (an admin's own too, not everyone's): what the upload page offers.
    public func ownedLabels(of user: AccountUser) async throws -> [String] {
        try await CatalogError.wrapping("list the user's own sources") {
            var labels: [String] = []
            for try await label in try await client.catalogQuery(
                "SELECT label FROM sources WHERE owner_id = \(user.id) ORDER BY label", logger: logger
            ).decode(String.self) {
                labels.append(label)
            }
            return labels
        }
    }

    /// Every source's files per state, deleted rows left out: one read of the whole table (a third of a second
    /// per million rows on the bench machine), so the status server reads it for everyone at once and keeps it a
    /// few seconds (`SnapshotCache`).
    public func sourceStateCounts() async throws -> SourceStateCounts {
        try await CatalogError.wrapping("count the sources' files") {
            var states: [Int64: [String: Int]] = [:]
            for try await (source, state, count) in try await client.catalogQuery("""
                SELECT source_id, state, count(*) FROM objectstoragefiles WHERE deleted_at IS NULL GROUP BY source_id, state
                """, logger: logger).decode((Int64, String, Int64).self) {
                states[source, default: [:]][state] = Int(count)
            }
            return SourceStateCounts(states: states)
        }
    }

    /// The files of `label` (every version, deleted rows left out) in id order, at most `limit` of them after file id
    /// `after`, or nil when there is no such source or the user may not see it. A page, so that no request reads and
    /// renders a whole large source at once (the client asks again from the last id).
    public func files(ofSource label: String, after: Int64 = 0, limit: Int = 1000, visibleTo user: AccountUser) async throws -> [FamilyFile]? {
        try await CatalogError.wrapping("list a source's files") {
            let isAdmin = user.role == .admin
            var sourceID: Int64?
            for try await id in try await client.catalogQuery(
                "SELECT id FROM sources WHERE label = \(label) AND (\(isAdmin) OR owner_id = \(user.id))", logger: logger
            ).decode(Int64.self) {
                sourceID = id
            }
            guard let sourceID else { return nil }
            let rows = try await client.catalogQuery("""
                SELECT f.id, f.path, f.version, f.size_bytes, f.state, \(unescaped: Self.readableExpression)
                \(unescaped: Self.downloadJoins)
                WHERE f.source_id = \(sourceID) AND f.deleted_at IS NULL AND f.id > \(after) ORDER BY f.id LIMIT \(limit)
                """, logger: logger)
            var files: [FamilyFile] = []
            for try await (id, path, version, size, state, downloadable) in rows.decode((Int64, String, Int32, Int64, String, Bool).self) {
                files.append(FamilyFile(id: id, path: path, version: Int(version), size: size, state: state, downloadable: downloadable))
            }
            return files
        }
    }
}
