import ArgumentParser
import CommandSupport
import PipelineCore

/// The progress page, JSON API, metrics and alert watchdog.
struct StatusServerCommand: AsyncParsableCommand, ProgramRole {
    static let role = WorkerRole.statusServer
    static let configuration = CommandConfiguration(
        commandName: "status-server",
        abstract: "Serve the backup's progress as a page, JSON and Prometheus metrics, and send alerts.",
        version: PipelineVersion.current,
        subcommands: [ServeCommand.self, MigrateCommand<StatusServerCommand>.self, ConfigCommand<StatusServerCommand>.self],
        defaultSubcommand: ServeCommand.self)
}

await CommandRunner.main(StatusServerCommand.self)
