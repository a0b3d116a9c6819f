import Foundation
import PipelineCore
import PostgresNIO

/// The admin side of the accounts: disabling users, invitations, the self-registration switch.
extension AccountCatalog {
    /// Disables (or enables again) `name`; a disabled user's sessions are ended in the same transaction. Returns
    /// false when no user has that name.
    public func setDisabled(name: String, _ disabled: Bool) async throws -> Bool {
        try await CatalogError.wrapping(disabled ? "disable a user" : "enable a user") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var id: Int64?
                for try await found in try await connection.query("""
                    UPDATE users SET disabled_at = CASE WHEN \(disabled) THEN coalesce(disabled_at, now()) END WHERE name = \(name) RETURNING id
                    """, logger: logger).decode(Int64.self) {
                    id = found
                }
                guard let id else { return false }
                if disabled { _ = try await connection.query("DELETE FROM user_sessions WHERE user_id = \(id)", logger: logger) }
                return true
            }
        }
    }

    /// Records an invitation (its token's hash) and returns when it expires.
    public func createInvitation(tokenHash: String, role: AccountRole, createdBy: Int64?, lifetime: Duration) async throws -> Date {
        try await CatalogError.wrapping("create an invitation") {
            for try await expires in try await client.catalogQuery("""
                INSERT INTO invitations (token_hash, role, created_by, expires_at)
                VALUES (\(tokenHash), \(role.rawValue), \(createdBy), now() + make_interval(secs => \(lifetime.seconds)))
                RETURNING expires_at
                """, logger: logger).decode(Date.self) {
                return expires
            }
            throw CatalogError(.migrationFailed, "the invitation row was not returned")
        }
    }

    /// The role a live invitation (unused, not expired) grants; nil for any other token.
    public func invitationRole(tokenHash: String) async throws -> AccountRole? {
        try await CatalogError.wrapping("look up an invitation") {
            for try await role in try await client.catalogQuery("""
                SELECT role FROM invitations WHERE token_hash = \(tokenHash) AND used_at IS NULL AND expires_at > now()
                """, logger: logger).decode(String.self) {
                return AccountRole(rawValue: role)
            }
            return nil
        }
    }

    public enum InvitationUse: Sendable {
        case added(AccountUser)
        /// Unknown, used or expired.
        case invalid
        case nameTaken
    }

    /// Adds the invited user and marks the invitation used, in one transaction: two people racing with the same
    /// link get one account between them.
    public func useInvitation(tokenHash: String, name: String, passwordHash: String) async throws -> InvitationUse {
        try await CatalogError.wrapping("accept an invitation") {
            try await client.withCatalogTransaction(logger: logger) { connection in
                var invitation: (id: Int64, role: AccountRole)?
                for try await (id, role) in try await connection.query("""
                    SELECT id, role FROM invitations WHERE token_hash = \(tokenHash) AND used_at IS NULL AND expires_at > now() FOR UPDATE
                    """, logger: logger).decode((Int64, String).self) {
                    invitation = (id, AccountRole(rawValue: role) ?? .member)
                }
                guard let invitation else { return .invalid }
                var userID: Int64?
                for try await id in try await connection.query("""
                    INSERT INTO users (name, role, password_hash) VALUES (\(name), \(invitation.role.rawValue), \(passwordHash))
                    ON CONFLICT (name) DO NOTHING RETURNING id
                    """, logger: logger).decode(Int64.self) {
                    userID = id
                }
                guard let userID else { return .nameTaken }
                _ = try await connection.query(
                    "UPDATE invitations SET used_at = now(), used_by = \(userID) WHERE id = \(invitation.id)", logger: logger)
                return .added(AccountUser(id: userID, name: name, role: invitation.role))
            }
        }
    }

    public func selfRegistration() async throws -> Bool {
        try await CatalogError.wrapping("read the self-registration setting") {
            for try await value in try await client.catalogQuery(
                "SELECT value FROM family_settings WHERE key = 'self_registration'", logger: logger
            ).decode(String.self) {
                return value == "on"
            }
            return false
        }
    }

    public func setSelfRegistration(_ on: Bool) async throws {
        try await CatalogError.wrapping("change the self-registration setting") {
            _ = try await client.catalogQuery("""
                INSERT INTO family_settings (key, value) VALUES ('self_registration', \(on ? "on" : "off"))
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                """, logger: logger)
        }
    }
}
