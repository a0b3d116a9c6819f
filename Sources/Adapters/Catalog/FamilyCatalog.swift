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

    public func sources(visibleTo user: AccountUser) async throws -> [FamilySource] {
        try await CatalogError.wrapping("list the user's sources") {
            let isAdmin = user.role == .admin
            let rows = try await client.query("""
                SELECT s.label, u.name, f.state, count(f.id)
                FROM sources s
                LEFT JOIN users u ON u.id = s.owner_id
                LEFT JOIN objectstoragefiles f ON f.source_id = s.id AND f.deleted_at IS NULL
                WHERE \(isAdmin) OR s.owner_id = \(user.id)
                GROUP BY s.id, s.label, u.name, f.state
                ORDER BY s.label
                """, logger: logger)
            var order: [String] = []
            var owners: [String: String?] = [:]
            var states: [String: [String: Int]] = [:]
            for try await (label, owner, state, count) in rows.decode((String, String?, String?, Int64).self) {
                if owners[label] == nil {
                    order.append(label)
                    owners[label] = .some(owner)
                    states[label] = [:]
                }
                if let state { states[label, default: [:]][state] = Int(count) }
            }
            return order.map { label in
                let counts = states[label] ?? [:]
                return FamilySource(label: label, owner: owners[label] ?? nil, files: counts.values.reduce(0, +), states: counts)
            }
        }
    }

    /// The files of `label` (every version, deleted rows left out) in id order, at most `limit` of them after file id
    /// `after`, or nil when there is no such source or the user may not see it. A page, so that no request reads and
    /// renders a whole large source at once (the client asks again from the last id).
    public func files(ofSource label: String, after: Int64 = 0, limit: Int = 1000, visibleTo user: AccountUser) async throws -> [FamilyFile]? {
        try await CatalogError.wrapping("list a source's files") {
            let isAdmin = user.role == .admin
            var sourceID: Int64?
            for try await id in try await client.query(
                "SELECT id FROM sources WHERE label = \(label) AND (\(isAdmin) OR owner_id = \(user.id))", logger: logger
            ).decode(Int64.self) {
                sourceID = id
            }
            guard let sourceID else { return nil }
            let rows = try await client.query("""
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
