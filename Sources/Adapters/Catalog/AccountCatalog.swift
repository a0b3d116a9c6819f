import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What a person may do: an admin sees every source (ownerless ones included), a member only their own.
public enum AccountRole: String, Sendable, Hashable, CaseIterable {
    case admin, member
}

/// A user as the server and the CLI see them (never with the password hash).
public struct AccountUser: Sendable, Hashable {
    public let id: Int64
    public let name: String
    public let role: AccountRole
    public init(id: Int64, name: String, role: AccountRole) {
        self.id = id
        self.name = name
        self.role = role
    }
}

/// One line of `uploader users list`.
public struct AccountListing: Sendable, Hashable {
    public let user: AccountUser
    public let createdAt: Date
    public let disabled: Bool
    public let liveTokens: Int
    public let liveSessions: Int
}

/// The accounts' queries (migration 16): users, server-side sessions and personal API tokens, stored only as hashes
/// of their secrets; failed logins for the rate limit; a source's owner. Hashing and the password rules live in the
/// `Accounts` step; this type only stores and looks up.
public struct AccountCatalog: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Adds a user; a taken name is `nil` (nothing changed).
    public func addUser(name: String, role: AccountRole, passwordHash: String) async throws -> AccountUser? {
        try await CatalogError.wrapping("add a user") {
            let rows = try await client.catalogQuery("""
                INSERT INTO users (name, role, password_hash) VALUES (\(name), \(role.rawValue), \(passwordHash))
                ON CONFLICT (name) DO NOTHING RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return AccountUser(id: id, name: name, role: role) }
            return nil
        }
    }

    public func listUsers() async throws -> [AccountListing] {
        try await CatalogError.wrapping("list the users") {
            let rows = try await client.catalogQuery("""
                SELECT u.id, u.name, u.role, u.created_at, u.disabled_at IS NOT NULL,
                       (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL),
                       (SELECT count(*) FROM user_sessions s WHERE s.user_id = u.id AND s.expires_at > now())
                FROM users u ORDER BY u.name
                """, logger: logger)
            var result: [AccountListing] = []
            for try await (id, name, role, created, disabled, tokens, sessions) in rows.decode((Int64, String, String, Date, Bool, Int64, Int64).self) {
                result.append(AccountListing(
                    user: AccountUser(id: id, name: name, role: AccountRole(rawValue: role) ?? .member), createdAt: created, disabled: disabled,
                    liveTokens: Int(tokens), liveSessions: Int(sessions)))
            }
            return result
        }
    }

    /// An enabled user and their password hash, for the login check.
    public func loginRecord(name: String) async throws -> (user: AccountUser, passwordHash: String)? {
        try await CatalogError.wrapping("look up a user") {
            let rows = try await client.catalogQuery(
                "SELECT id, name, role, password_hash FROM users WHERE name = \(name) AND disabled_at IS NULL", logger: logger)
            for try await (id, name, role, hash) in rows.decode((Int64, String, String, String).self) {
                return (AccountUser(id: id, name: name, role: AccountRole(rawValue: role) ?? .member), hash)
            }
            return nil
        }
    }

    /// The enabled users' ids and names, at most `limit` of them. Reads only the columns the uploader's database role
    /// may read (`infra/sql/uploader-role.sql`: never the password hash).
    public func enabledUsers(named name: String? = nil, limit: Int = 2) async throws -> [(id: Int64, name: String)] {
        try await CatalogError.wrapping("look up the owner") {
            let rows = try await client.catalogQuery("""
                SELECT id, name FROM users WHERE disabled_at IS NULL AND (\(name)::text IS NULL OR name = \(name)) ORDER BY id LIMIT \(limit)
                """, logger: logger)
            var result: [(id: Int64, name: String)] = []
            for try await (id, name) in rows.decode((Int64, String).self) { result.append((id, name)) }
            return result
        }
    }

    // MARK: Tokens

    /// Stores a new personal token's hash under `tokenName`; false when that user already has a live token of that name.
    public func addToken(userID: Int64, tokenName: String, tokenHash: String) async throws -> Bool {
        try await CatalogError.wrapping("add an API token") {
            let rows = try await client.catalogQuery("""
                INSERT INTO api_tokens (user_id, name, token_hash) VALUES (\(userID), \(tokenName), \(tokenHash))
                ON CONFLICT (user_id, name) WHERE revoked_at IS NULL DO NOTHING RETURNING id
                """, logger: logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    /// Revokes a user's live tokens named `tokenName` (every live token of theirs when nil); returns how many.
    public func revokeTokens(userID: Int64, tokenName: String?) async throws -> Int {
        try await CatalogError.wrapping("revoke API tokens") {
            let rows = try await client.catalogQuery("""
                UPDATE api_tokens SET revoked_at = now()
                WHERE user_id = \(userID) AND revoked_at IS NULL AND (\(tokenName)::text IS NULL OR name = \(tokenName)) RETURNING id
                """, logger: logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }

    /// The enabled user a live token's hash belongs to.
    public func user(tokenHash: String) async throws -> AccountUser? {
        try await oneUser("authenticate a token", """
            SELECT u.id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = \(tokenHash) AND t.revoked_at IS NULL AND u.disabled_at IS NULL
            """)
    }

    // MARK: Sessions

    public func createSession(userID: Int64, idHash: String, lifetime: Duration) async throws {
        try await CatalogError.wrapping("create a session") {
            let seconds = Double(lifetime.components.seconds)
            _ = try await client.catalogQuery("""
                INSERT INTO user_sessions (id_hash, user_id, expires_at) VALUES (\(idHash), \(userID), now() + make_interval(secs => \(seconds)))
                """, logger: logger)
            // Expired sessions of anyone go at the same time: the table holds only live ones for long.
            _ = try await client.catalogQuery("DELETE FROM user_sessions WHERE expires_at < now() - interval '1 day'", logger: logger)
        }
    }

    /// The enabled user of a live session.
    public func user(sessionHash: String) async throws -> AccountUser? {
        try await oneUser("authenticate a session", """
            SELECT u.id, u.name, u.role FROM user_sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id_hash = \(sessionHash) AND s.expires_at > now() AND u.disabled_at IS NULL
            """)
    }

    public func deleteSession(idHash: String) async throws {
        try await CatalogError.wrapping("end a session") {
            _ = try await client.catalogQuery("DELETE FROM user_sessions WHERE id_hash = \(idHash)", logger: logger)
        }
    }

    /// Ends every session of a user ("log out everywhere"); returns how many there were.
    @discardableResult
    public func deleteSessions(userID: Int64) async throws -> Int {
        try await CatalogError.wrapping("end a user's sessions") {
            var count = 0
            for try await _ in try await client.catalogQuery("DELETE FROM user_sessions WHERE user_id = \(userID) RETURNING 1", logger: logger).decode(Int32.self) {
                count += 1
            }
            return count
        }
    }

    // MARK: Failed logins

    /// How many failures each key had in the last `window`.
    public func recentFailures(keys: [String], window: Duration) async throws -> [String: Int] {
        try await CatalogError.wrapping("count failed logins") {
            let seconds = Double(window.components.seconds)
            let rows = try await client.catalogQuery("""
                SELECT key, count(*) FROM login_failures
                WHERE key = ANY(\(keys)) AND failed_at > now() - make_interval(secs => \(seconds)) GROUP BY key
                """, logger: logger)
            var result: [String: Int] = [:]
            for try await (key, count) in rows.decode((String, Int64).self) { result[key] = Int(count) }
            return result
        }
    }

    /// Records one failure under each key, and forgets failures older than `window`.
    public func recordFailure(keys: [String], window: Duration) async throws {
        try await CatalogError.wrapping("record a failed login") {
            let seconds = Double(window.components.seconds)
            _ = try await client.catalogQuery("INSERT INTO login_failures (key) SELECT unnest(\(keys)::text[])", logger: logger)
            _ = try await client.catalogQuery("DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => \(seconds))", logger: logger)
        }
    }

    public func clearFailures(key: String) async throws {
        try await CatalogError.wrapping("clear failed logins") {
            _ = try await client.catalogQuery("DELETE FROM login_failures WHERE key = \(key)", logger: logger)
        }
    }

    // MARK: Owners

    /// Gives the source `label` to `ownerID`, creating its row when it does not exist yet (the upload then fills it
    /// in). A source that has an owner keeps it; returns the owner's id after the call.
    public func claimSource(label: String, ownerID: Int64) async throws -> Int64? {
        try await CatalogError.wrapping("record the source's owner") {
            let rows = try await client.catalogQuery("""
                INSERT INTO sources (label, owner_id) VALUES (\(label), \(ownerID))
                ON CONFLICT (label) DO UPDATE SET owner_id = COALESCE(sources.owner_id, EXCLUDED.owner_id)
                RETURNING owner_id
                """, logger: logger)
            for try await owner in rows.decode(Int64?.self) { return owner }
            return nil
        }
    }

    /// The owner of an existing source: `.some(nil)` for an ownerless one, nil when there is no such source.
    public func owner(ofSource label: String) async throws -> (id: Int64, name: String)?? {
        try await CatalogError.wrapping("look up the source's owner") {
            let rows = try await client.catalogQuery("""
                SELECT s.owner_id, u.name FROM sources s LEFT JOIN users u ON u.id = s.owner_id WHERE s.label = \(label)
                """, logger: logger)
            for try await (id, name) in rows.decode((Int64?, String?).self) {
                guard let id, let name else { return .some(nil) }
                return .some((id, name))
            }
            return nil
        }
    }

    private func oneUser(_ operation: String, _ query: PostgresQuery) async throws -> AccountUser? {
        try await CatalogError.wrapping(operation) {
            for try await (id, name, role) in try await client.catalogQuery(query, logger: logger).decode((Int64, String, String).self) {
                return AccountUser(id: id, name: name, role: AccountRole(rawValue: role) ?? .member)
            }
            return nil
        }
    }
}
