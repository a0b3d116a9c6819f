import ArgumentParser
import CommandSupport
import PipelineCore

/// The cloud worker that turns raw home video into H.265/H.264/AV1 with libav.
struct Transcoder: AsyncParsableCommand, ProgramRole {
    static let role = WorkerRole.transcoder
    static let configuration = CommandConfiguration(
        commandName: "transcoder",
        abstract: "Transcode staged raw videos with libav before they are archived.",
        version: PipelineVersion.current,
        subcommands: [RunCommand.self, MigrateCommand<Transcoder>.self, ConfigCommand<Transcoder>.self, HealthCommand<Transcoder>.self, LibAVCommand.self],
        defaultSubcommand: RunCommand.self)
}

await CommandRunner.main(Transcoder.self)
