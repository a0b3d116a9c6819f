import ArgumentParser
import CommandSupport
import PipelineCore
import SystemIO

/// The program a person runs next to their discs: ingests files into staging and records them in the catalog.
struct Uploader: AsyncParsableCommand, ProgramRole {
    static let role = WorkerRole.uploader
    static let configuration = CommandConfiguration(
        commandName: "uploader",
        abstract: "Ingest discs, drives and disc images into the backup pipeline; list, verify and restore what is archived.",
        discussion: "Settings come from flags, the environment (DATABASE_URL, BACKUP_STAGING_URL, …) or a config file; see the README.",
        version: PipelineVersion.current,
        subcommands: [
            UploadCommand.self, SendCommand.self, ImageCommand.self, DiscsCommand.self, RestoreCommand.self, RestoreStatusCommand.self, AuditCommand.self, VerifyCommand.self, ListCommand.self,
            SourcesCommand.self, UsersCommand.self, MaintenanceCommand.self, SnapshotsCommand.self, DiffCommand.self, ForgetCommand.self, RebuildCatalogCommand.self, KeygenCommand.self, EncryptCommand.self, DecryptCommand.self, MigrateCommand<Uploader>.self,
            ConfigCommand<Uploader>.self, DatabaseCommand<Uploader>.self])
}

// 32: reading into a local store (a spool), small files wait for their fsync after giving their read slot back, and
// fsyncs in flight together share one journal commit; with 8 threads they queued ahead of the next reads.
BlockingThreadPool.sizeForFileIO(minimumThreads: 32)
await CommandRunner.main(Uploader.self)
