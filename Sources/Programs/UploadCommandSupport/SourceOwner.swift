import ArgumentParser
import Catalog
import CommandSupport
import PipelineCore
import Upload

/// `--owner USER` on every command that creates sources (`upload`, `image`, `discs`, `pipeline run`).
public struct OwnerOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("The user the new sources belong to (default: the only user, else BACKUP_OWNER, else none).", valueName: "user"))
    public var owner: String?

    public init() {}
}

/// Who a source belongs to in the family archive.
///
/// The owner is `--owner`; without it the only user when exactly one exists, else `BACKUP_OWNER`, else none (an
/// ownerless source is visible to admins only). It is resolved before anything is read: an unknown user stops the
/// command with one line. A source that has an owner keeps it: `--owner` naming someone else is refused, the default
/// leaves it alone. The upload run records it when it opens the source (`UploadConfiguration.owner`).
public enum SourceOwner {
    static let setting = "BACKUP_OWNER"

    /// The owner for new sources, or nil (ownerless). Stops the command on an unknown or disabled user.
    public static func resolve(explicit: String?, context: ProgramContext) async throws -> SourceOwnerChoice? {
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            try await resolve(explicit: explicit, accounts: AccountCatalog(client: client, logger: context.logger), context: context)
        }
    }

    /// The same, in a catalog session the command has open already.
    public static func resolve(explicit: String?, accounts catalog: AccountCatalog, context: ProgramContext) async throws -> SourceOwnerChoice? {
        if let explicit {
            guard let user = try await catalog.enabledUsers(named: explicit, limit: 1).first else {
                throw usageError("--owner \(explicit): no such user (see `uploader users list`)")
            }
            return SourceOwnerChoice(id: user.id, name: user.name, explicit: true)
        }
        let users = try await catalog.enabledUsers(limit: 2)
        if users.count == 1 { return SourceOwnerChoice(id: users[0].id, name: users[0].name, explicit: false) }
        guard let requested = context.setting(setting) else { return nil }
        guard let user = try await catalog.enabledUsers(named: requested, limit: 1).first else {
            throw usageError("\(setting)=\(requested): no such user (see `uploader users list`)")
        }
        return SourceOwnerChoice(id: user.id, name: user.name, explicit: false)
    }

    /// Resolves the owner for `label` and refuses, before anything is read, an explicit `--owner` for a source that
    /// belongs to someone else. The returned choice goes into `UploadConfiguration.owner`.
    public static func resolve(label: String, explicit: String?, context: ProgramContext) async throws -> SourceOwnerChoice? {
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            try await resolve(label: label, explicit: explicit, accounts: AccountCatalog(client: client, logger: context.logger),
                              ingest: IngestCatalog(client: client, logger: context.logger), context: context)
        }
    }

    /// The same, in a catalog session the command has open already (the upload's own: one session, not two).
    public static func resolve(label: String, explicit: String?, accounts: AccountCatalog, ingest: IngestCatalog,
                               context: ProgramContext) async throws -> SourceOwnerChoice? {
        let choice = try await resolve(explicit: explicit, accounts: accounts, context: context)
        guard let choice, choice.explicit else { return choice }
        if let current = try await ingest.otherOwner(ofSource: label, than: choice.id) {
            throw usageError(SourceOwnerChoice.refusal(label: label, currentOwner: current, requested: choice.name))
        }
        return choice
    }
}

/// A usage problem found while running (a weak password, an unknown owner): one line on standard error, exit code 2.
public func usageError(_ line: String) -> ExitCode {
    CommandRunner.printToStandardError("error: \(line)")
    return ExitCode(2)
}
