import Catalog
import Foundation
import PipelineCore
import SystemIO

/// What an admin does to accounts: disable and enable users, invite people, open or close self-registration.
extension AccountService {
    /// Disables `name` (their sessions end at once, their tokens stop working; sources keep their owner), or
    /// enables them again.
    public func setDisabled(name: String, _ disabled: Bool) async throws {
        guard try await catalog.setDisabled(name: name, disabled) else { throw AccountError(.unknownUser, "no user named \(name)") }
    }

    /// A one-time invitation link's token (shown once; only its hash is kept), valid for `lifetime`.
    public func invite(role: AccountRole, by admin: AccountUser?, lifetime: Duration) async throws -> (token: Secret, expires: Date) {
        let token = SecretTokens.generate(prefix: SecretTokens.invitationPrefix)
        let expires = try await catalog.createInvitation(tokenHash: SecretTokens.hash(token), role: role, createdBy: admin?.id, lifetime: lifetime)
        return (token, expires)
    }

    /// Whether `token` is a live invitation, and for which role.
    public func invitationRole(_ token: Secret) async throws -> AccountRole? {
        guard token.revealed.hasPrefix(SecretTokens.invitationPrefix) else { return nil }
        return try await catalog.invitationRole(tokenHash: SecretTokens.hash(token))
    }

    /// Creates the invited account and a session for it. The name and password follow the same rules as
    /// `uploader users add`.
    public func acceptInvitation(_ token: Secret, name: String, password: Secret) async throws -> (AccountUser, session: Secret) {
        try UserNames.check(name)
        try Passwords.check(password)
        guard try await invitationRole(token) != nil else { throw AccountError(.invalidInvitation, "this invitation is unknown, used or expired") }
        let hash = try await blocking { try Passwords.hash(password) }
        switch try await catalog.useInvitation(tokenHash: SecretTokens.hash(token), name: name, passwordHash: hash) {
        case .invalid: throw AccountError(.invalidInvitation, "this invitation is unknown, used or expired")
        case .nameTaken: throw AccountError(.exists, "a user named \(name) exists already")
        case .added(let user): return (user, try await startSession(user))
        }
    }

    public func selfRegistration() async throws -> Bool { try await catalog.selfRegistration() }

    public func setSelfRegistration(_ on: Bool) async throws { try await catalog.setSelfRegistration(on) }

    /// A member account made by the person themself, only while an admin has self-registration on.
    public func register(name: String, password: Secret) async throws -> (AccountUser, session: Secret) {
        guard try await catalog.selfRegistration() else { throw AccountError(.registrationClosed, "registration is closed: ask an admin for an invitation") }
        let user = try await addUser(name: name, role: .member, password: password)
        return (user, try await startSession(user))
    }

    func startSession(_ user: AccountUser) async throws -> Secret {
        let session = SecretTokens.generate()
        try await catalog.createSession(userID: user.id, idHash: SecretTokens.hash(session), lifetime: settings.sessionLifetime)
        return session
    }
}
