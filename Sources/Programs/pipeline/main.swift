import ArgumentParser
import CommandSupport
import PipelineCore
import SystemIO

/// Everything on one machine: uploader, workers and status server together on embedded defaults.
struct Pipeline: AsyncParsableCommand, ProgramRole {
    static let role = WorkerRole.pipeline
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Run the whole backup pipeline on one machine.",
        version: PipelineVersion.current,
        subcommands: [RunCommand.self, MigrateCommand<Pipeline>.self, ConfigCommand<Pipeline>.self, DatabaseCommand<Pipeline>.self])
}

BlockingThreadPool.sizeForFileIO()
await CommandRunner.main(Pipeline.self)
