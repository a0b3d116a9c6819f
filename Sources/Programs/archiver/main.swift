import ArgumentParser
import CommandSupport
import PipelineCore

/// The cloud worker that deduplicates, packs and moves staged files into the archive bucket.
struct Archiver: AsyncParsableCommand, ProgramRole {
    static let role = WorkerRole.archiver
    static let configuration = CommandConfiguration(
        commandName: "archiver",
        abstract: "Archive staged files: dedupe by SHA-256, pack small files into bundles, store in the archive bucket.",
        version: PipelineVersion.current,
        subcommands: [RunCommand.self, ExportCatalogCommand.self, MigrateCommand<Archiver>.self, ConfigCommand<Archiver>.self, HealthCommand<Archiver>.self],
        defaultSubcommand: RunCommand.self)
}

await CommandRunner.main(Archiver.self)
