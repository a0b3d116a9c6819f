import Catalog
import Logging
import PipelineCore
import PostgresNIO
import SystemIO

/// How logins are limited and how long a session lives.
public struct AccountSettings: Sendable {
    /// Failed logins per user name within `window` before that name is refused for the rest of the window.
    public var failuresPerAccount: Int
    /// Failed logins per client address within `window`.
    public var failuresPerAddress: Int
    public var window: Duration
    /// A session ends this long after the login, whatever happens in between.
    public var sessionLifetime: Duration

    public init(failuresPerAccount: Int = 5, failuresPerAddress: Int = 20, window: Duration = .seconds(15 * 60), sessionLifetime: Duration = .seconds(14 * 24 * 3600)) {
        self.failuresPerAccount = failuresPerAccount
        self.failuresPerAddress = failuresPerAddress
        self.window = window
        self.sessionLifetime = sessionLifetime
    }
}

public enum LoginOutcome: Sendable {
    /// The password fitted: a new session, whose id goes into the cookie and nowhere else.
    case success(AccountUser, session: Secret)
    /// Unknown name or wrong password (the same answer for both).
    case refused
    /// Too many failures for this name or this address lately; the password was not even checked.
    case limited
}

/// Users, logins, sessions and personal tokens on top of `AccountCatalog`: the rules and the hashing.
public struct AccountService: Sendable {
    public let catalog: AccountCatalog
    public let settings: AccountSettings

    public init(client: PostgresClient, logger: Logger, settings: AccountSettings = AccountSettings()) {
        self.catalog = AccountCatalog(client: client, logger: logger)
        self.settings = settings
    }

    public func addUser(name: String, role: AccountRole, password: Secret) async throws -> AccountUser {
        try UserNames.check(name)
        try Passwords.check(password)
        let hash = try await blocking { try Passwords.hash(password) }
        guard let user = try await catalog.addUser(name: name, role: role, passwordHash: hash) else {
            throw AccountError(.exists, "a user named \(name) exists already")
        }
        return user
    }

    /// Checks a login. The same work (one bcrypt verification) is done for an unknown name as for a wrong password.
    public func login(name: String, password: Secret, address: String?) async throws -> LoginOutcome {
        // Capped: the name comes from the form, and a real one is at most 64 characters.
        let accountKey = "user:" + String(name.lowercased().prefix(128))
        let keys = [accountKey] + (address.map { ["address:" + $0] } ?? [])
        let failures = try await catalog.recentFailures(keys: keys, window: settings.window)
        if failures[accountKey, default: 0] >= settings.failuresPerAccount
            || address.map({ failures["address:" + $0, default: 0] >= settings.failuresPerAddress }) == true
        {
            return .limited
        }
        let record = try await catalog.loginRecord(name: name)
        let hash = record?.passwordHash ?? Passwords.decoyHash
        let fits = try await blocking { Passwords.verify(password, hash: hash) }
        guard let record, fits else {
            try await catalog.recordFailure(keys: keys, window: settings.window)
            return .refused
        }
        try await catalog.clearFailures(key: accountKey)
        return .success(record.user, session: try await startSession(record.user))
    }

    /// The user of a live session id (from the cookie).
    public func user(session: Secret) async throws -> AccountUser? {
        guard !session.revealed.isEmpty else { return nil }
        return try await catalog.user(sessionHash: SecretTokens.hash(session))
    }

    /// The user of a live personal API token.
    public func user(apiToken: Secret) async throws -> AccountUser? {
        guard apiToken.revealed.hasPrefix(SecretTokens.apiTokenPrefix) else { return nil }
        return try await catalog.user(tokenHash: SecretTokens.hash(apiToken))
    }

    public func logout(session: Secret) async throws {
        try await catalog.deleteSession(idHash: SecretTokens.hash(session))
    }

    /// Ends every session of the user, this one included.
    @discardableResult
    public func logoutEverywhere(_ user: AccountUser) async throws -> Int {
        try await catalog.deleteSessions(userID: user.id)
    }

    /// A new personal API token for `userName`, named `tokenName`; shown once, only its hash is kept.
    public func issueToken(userName: String, tokenName: String) async throws -> Secret {
        let user = try await enabledUser(userName)
        let token = SecretTokens.generate(prefix: SecretTokens.apiTokenPrefix)
        guard try await catalog.addToken(userID: user.id, tokenName: tokenName, tokenHash: SecretTokens.hash(token)) else {
            throw AccountError(.exists, "\(userName) already has a token named \(tokenName): revoke it first or choose another --name")
        }
        return token
    }

    /// Revokes `userName`'s live token named `tokenName`, or all of them when nil; returns how many.
    public func revokeTokens(userName: String, tokenName: String?) async throws -> Int {
        let user = try await enabledUser(userName)
        let count = try await catalog.revokeTokens(userID: user.id, tokenName: tokenName)
        if count == 0, let tokenName { throw AccountError(.unknownToken, "\(userName) has no live token named \(tokenName)") }
        return count
    }

    private func enabledUser(_ name: String) async throws -> (id: Int64, name: String) {
        guard let user = try await catalog.enabledUsers(named: name, limit: 1).first else {
            throw AccountError(.unknownUser, "no user named \(name)")
        }
        return user
    }
}

extension AccountService {
    /// Ends every session of the user named `userName` (the CLI's "log out everywhere").
    public func logoutEverywhere(userName: String) async throws -> Int {
        guard let user = try await catalog.enabledUsers(named: userName, limit: 1).first else {
            throw AccountError(.unknownUser, "no user named \(userName)")
        }
        return try await catalog.deleteSessions(userID: user.id)
    }
}
