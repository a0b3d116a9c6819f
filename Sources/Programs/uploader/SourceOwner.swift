import Accounts
import ArgumentParser
import Catalog
import CommandSupport
import PipelineCore

/// `uploader upload --owner USER`: who the source belongs to in the family archive.
///
/// The owner is `--owner`; without it the only user when exactly one exists, else `BACKUP_OWNER`, else none (an
/// ownerless source is visible to admins only). It is resolved before anything is read, and recorded on the source
/// row before the first file: an unknown user stops the command with one line. A source that has an owner keeps it:
/// `--owner` naming someone else is refused, the default leaves it alone.
enum SourceOwner {
    static let setting = "BACKUP_OWNER"

    /// Resolves the owner and records it on `label` (unless `record` is false: a dry run).
    static func claim(label: String, explicit: String?, context: ProgramContext, record: Bool) async throws {
        let outcome = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ -> String? in
            let catalog = AccountCatalog(client: client, logger: context.logger)
            let requested = explicit ?? context.setting(setting)
            let owner: (id: Int64, name: String)?
            if let explicit {
                owner = try await catalog.enabledUsers(named: explicit, limit: 1).first
                guard owner != nil else { return "--owner \(explicit): no such user (see `uploader users list`)" }
            } else {
                let users = try await catalog.enabledUsers(limit: 2)
                if users.count == 1 {
                    owner = users[0]
                } else if let requested {
                    owner = try await catalog.enabledUsers(named: requested, limit: 1).first
                    guard owner != nil else { return "\(setting)=\(requested): no such user (see `uploader users list`)" }
                } else {
                    owner = nil
                }
            }
            guard let owner else { return nil }
            if let explicit, case .some(.some(let current)) = try await catalog.owner(ofSource: label), current.id != owner.id {
                return "\(label) belongs to \(current.name); --owner \(explicit) cannot take it"
            }
            if record { _ = try await catalog.claimSource(label: label, ownerID: owner.id) }
            return nil
        }
        if let problem = outcome { throw usageError(problem) }
    }
}
