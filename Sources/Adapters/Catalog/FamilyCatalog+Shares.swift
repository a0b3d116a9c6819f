import Foundation
import PipelineCore
import PostgresNIO

/// A live share link of a file, as its page lists it.
public struct FamilyShare: Sendable, Hashable {
    public let id: Int64
    public let createdBy: String
    public let createdAt: Date
    public let expiresAt: Date
}

/// Share links: `file_shares` rows naming one file, found by the SHA-256 of the link's token. Whoever holds the link
/// reads the file without logging in until it expires or is revoked.
extension FamilyCatalog {
    public enum ShareOutcome: Sendable {
        case created(id: Int64, expires: Date)
        /// The file's bytes need a restore first: a share link could not serve them.
        case needsRestore
    }

    /// Shares file `fileID` for `lifetime`; nil when the caller may not see the file.
    public func createShare(fileID: Int64, tokenHash: String, lifetime: Duration, visibleTo user: AccountUser) async throws -> ShareOutcome? {
        try await CatalogError.wrapping("create a share link") {
            guard let download = try await download(fileID: fileID, visibleTo: user) else { return nil }
            guard download.read != nil else { return .needsRestore }
            let rows = try await client.catalogQuery("""
                INSERT INTO file_shares (token_hash, file_id, created_by, expires_at)
                VALUES (\(tokenHash), \(fileID), \(user.id), now() + make_interval(secs => \(lifetime.seconds)))
                RETURNING id, expires_at
                """, logger: logger)
            for try await (id, expires) in rows.decode((Int64, Date).self) { return .created(id: id, expires: expires) }
            return nil
        }
    }

    /// The file's live links (neither expired nor revoked); nil when the caller may not see the file.
    public func shares(fileID: Int64, visibleTo user: AccountUser) async throws -> [FamilyShare]? {
        try await CatalogError.wrapping("list share links") {
            guard try await download(fileID: fileID, visibleTo: user) != nil else { return nil }
            var shares: [FamilyShare] = []
            for try await (id, name, created, expires) in try await client.catalogQuery("""
                SELECT sh.id, u.name, sh.created_at, sh.expires_at FROM file_shares sh JOIN users u ON u.id = sh.created_by
                WHERE sh.file_id = \(fileID) AND sh.revoked_at IS NULL AND sh.expires_at > now() ORDER BY sh.id
                """, logger: logger).decode((Int64, String, Date, Date).self) {
                shares.append(FamilyShare(id: id, createdBy: name, createdAt: created, expiresAt: expires))
            }
            return shares
        }
    }

    /// Revokes link `shareID` of file `fileID`: true if it was live, false if already revoked or expired, nil when
    /// the caller may not see the file or the link is not the file's.
    public func revokeShare(_ shareID: Int64, fileID: Int64, visibleTo user: AccountUser) async throws -> Bool? {
        try await CatalogError.wrapping("revoke a share link") {
            guard try await download(fileID: fileID, visibleTo: user) != nil else { return nil }
            var exists = false
            for try await _ in try await client.catalogQuery(
                "SELECT id FROM file_shares WHERE id = \(shareID) AND file_id = \(fileID)", logger: logger
            ).decode(Int64.self) { exists = true }
            guard exists else { return nil }
            var revoked = false
            for try await _ in try await client.catalogQuery("""
                UPDATE file_shares SET revoked_at = now() WHERE id = \(shareID) AND revoked_at IS NULL AND expires_at > now() RETURNING id
                """, logger: logger).decode(Int64.self) { revoked = true }
            return revoked
        }
    }

    /// What a link's holder may download: nil when no live link has this token, or its file was deleted.
    public func sharedDownload(tokenHash: String) async throws -> FamilyDownload? {
        try await CatalogError.wrapping("open a share link") {
            let rows = try await client.catalogQuery("""
                SELECT \(unescaped: Self.downloadColumns)
                \(unescaped: Self.downloadJoins)
                JOIN file_shares sh ON sh.file_id = f.id
                WHERE sh.token_hash = \(tokenHash) AND sh.revoked_at IS NULL AND sh.expires_at > now() AND f.deleted_at IS NULL
                """, logger: logger)
            for try await row in rows.decode(DownloadRow.self) { return Self.download(row) }
            return nil
        }
    }
}
