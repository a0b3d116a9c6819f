import Accounts
import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import PipelineCore
import UploadCommandSupport

/// `uploader users …`: the family accounts of the status server (add, list, personal API tokens). Run with a
/// database role that may write the `users` table (the owner's, not `infra/sql/uploader-role.sql`'s).
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Manage the accounts that log in to the status server (family archive).",
        subcommands: [
            UsersAddCommand.self, UsersListCommand.self, UsersTokenCommand.self, UsersRevokeTokenCommand.self, UsersLogoutCommand.self,
            UsersDisableCommand.self, UsersEnableCommand.self, UsersInviteCommand.self,
        ])
}

/// Runs `body` with the account service on the migrated catalog; account errors become one line and exit 1.
func withAccounts<Result: Sendable>(_ options: GlobalOptions, _ body: @escaping @Sendable (AccountService) async throws -> Result) async throws -> Result {
    let context = try ProgramContext.load(options, role: .uploader)
    do {
        return try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            try await body(AccountService(client: client, logger: context.logger))
        }
    } catch let error as AccountError {
        CommandRunner.printToStandardError("error: \(error)")
        throw ExitCode(1)
    }
}

struct UsersAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a user; the password is asked on the terminal (twice, without echo), or read from the first line of standard input when it is not a terminal.",
        discussion: "Never pass a password as a flag: flags end up in shell history and in the process list.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user name (letters, digits, '.', '_', '-').")
    var name: String

    @Flag(help: "An admin sees every source, ownerless ones included.")
    var admin = false

    func run() async throws {
        do { try UserNames.check(name) } catch let error as AccountError { throw usageError(error.description) }
        let password = try Self.readNewPassword()
        do { try Passwords.check(password) } catch let error as AccountError { throw usageError(error.description) }
        let role: AccountRole = admin ? .admin : .member
        let user = try await withAccounts(options) { accounts in try await accounts.addUser(name: name, role: role, password: password) }
        print("added \(user.role.rawValue) \(user.name)")
    }

    /// From the terminal without echo (twice), or the first line of standard input.
    static func readNewPassword() throws -> Secret {
        if isatty(STDIN_FILENO) == 1 {
            let first = try SecretInput.askPassphrase("Password: ")
            let second = try SecretInput.askPassphrase("The same password again: ")
            guard first == second else { throw usageError("the two passwords differ; no user was added") }
            return Secret(first)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(STDIN_FILENO, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            bytes.append(byte)
            if bytes.count > 4096 { break }
        }
        return Secret(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r")))
    }
}

struct UsersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the users with their role, live tokens and sessions.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
        let users = try await withAccounts(options) { accounts in try await accounts.catalog.listUsers() }
        for listing in users {
            if json {
                let object: [String: Any] = [
                    "name": listing.user.name, "role": listing.user.role.rawValue, "created": Format.timestamp(listing.createdAt),
                    "disabled": listing.disabled, "tokens": listing.liveTokens, "sessions": listing.liveSessions,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let state = listing.disabled ? ", disabled" : ""
                print("\(listing.user.name)\t\(listing.user.role.rawValue)\(state)\ttokens: \(listing.liveTokens)\tsessions: \(listing.liveSessions)\tsince \(Format.timestamp(listing.createdAt))")
            }
        }
        if users.isEmpty && !json { print("no users yet: add the first admin with `uploader users add NAME --admin`") }
    }
}

struct UsersTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a new personal API token that acts as NAME (shown once: only its hash is kept).",
        discussion: "Use it as 'Authorization: Bearer <token>' on /api/sources and /files/…; revoke it with `uploader users revoke-token`.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user the token acts as.")
    var name: String

    @Option(name: .customLong("name"), help: "A name for the token, to revoke it by (unique among the user's live tokens).")
    var tokenName = "default"

    func run() async throws {
        let (user, tokenName) = (name, tokenName)
        let token = try await withAccounts(options) { accounts in try await accounts.issueToken(userName: user, tokenName: tokenName) }
        print(token.revealed)
    }
}

struct UsersRevokeTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke-token", abstract: "Revoke a user's personal API token (by its --name, or --all).")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user whose token is revoked.")
    var name: String

    @Option(name: .customLong("name"), help: "The token's name (default: default).")
    var tokenName: String?

    @Flag(help: "Revoke every live token of the user.")
    var all = false

    func run() async throws {
        let user = name
        let selected: String? = all ? nil : (tokenName ?? "default")
        let count = try await withAccounts(options) { accounts in try await accounts.revokeTokens(userName: user, tokenName: selected) }
        print("revoked \(count) token\(count == 1 ? "" : "s") of \(user)")
    }
}

struct UsersLogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "End every browser session of a user (log out everywhere).")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user.")
    var name: String

    func run() async throws {
        let user = name
        let count = try await withAccounts(options) { accounts in try await accounts.logoutEverywhere(userName: user) }
        print("ended \(count) session\(count == 1 ? "" : "s") of \(user)")
    }
}
