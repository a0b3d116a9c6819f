import Accounts
import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import PipelineCore

struct UsersDisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Disable a user: their sessions end at once and their tokens stop working; their sources keep their owner.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user.")
    var name: String

    func run() async throws {
        let user = name
        try await withAccounts(options) { accounts in try await accounts.setDisabled(name: user, true) }
        print("disabled \(user)")
    }
}

struct UsersEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a disabled user again.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The user.")
    var name: String

    func run() async throws {
        let user = name
        try await withAccounts(options) { accounts in try await accounts.setDisabled(name: user, false) }
        print("enabled \(user)")
    }
}

struct UsersInviteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Print a one-time invitation link (its path on the status server): whoever opens it first chooses a name and password.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "The invited person becomes an admin.")
    var admin = false

    @Option(help: "Days until the link expires (1-30).")
    var days = 7

    func validate() throws {
        guard (1...30).contains(days) else { throw ValidationError("--days must be between 1 and 30") }
    }

    func run() async throws {
        let (role, lifetime) = (admin ? AccountRole.admin : .member, Duration.seconds(days * 86_400))
        let (token, expires) = try await withAccounts(options) { accounts in try await accounts.invite(role: role, by: nil, lifetime: lifetime) }
        print("/invite/\(token.revealed)")
        CommandRunner.printToStandardError("a one-time \(role.rawValue) invitation, valid until \(Format.timestamp(expires)); prefix it with the status page's address")
    }
}
