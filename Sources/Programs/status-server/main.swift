import ArgumentParser
import CommandSupport
import PipelineCore
import SystemIO

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

// Browser uploads write, fsync and hash files on NIO's thread pool: one thread per core would let two fsyncs stall
// every login's bcrypt and every other upload behind them.
BlockingThreadPool.sizeForFileIO()
await CommandRunner.main(StatusServerCommand.self)
