import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import Media
import ObjectStore
import PipelineCore
import Alerts
import TranscodeStep
import JobQueue

/// `transcoder run`: the polling worker that converts staged videos.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Poll the catalog and transcode staged videos (the default command).",
        discussion: """
            Claims staged videos, transcodes them with libav (deinterlaced, aspect ratio kept, every audio track), \
            verifies the result by decoding it end to end, and hands it to the archiver. A video that cannot be \
            converted is archived unconverted; a file that is not a video is archived as a regular file.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var worker: WorkerOptions

    @Option(help: "Transcoding profile: h265 (default), h264 or av1 (BACKUP_TRANSCODE_PROFILE).")
    var profile: String?

    @Option(help: "Where raw files and results are kept while working (default: <data dir>/tmp/transcoder).")
    var workDirectory: String?

    func validate() throws {
        try worker.validate()
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .transcoder)
        // libav would otherwise print its own chatter to stderr; its errors reach us as MediaError text.
        LibAV.logLevel = .error
        let configuration = TranscodeConfiguration(
            profile: try TranscodeProfile.chosen(flag: profile, setting: context.setting(TranscodeProfile.setting)),
            workDirectory: workDirectory ?? context.layout.transcoderWork, testCrashAfterTitles: context.hooks.transcoderCrashAfterTitles)
        // A transcode takes minutes: claim one video at a time unless asked otherwise.
        var workerConfiguration = worker.configuration(step: .transcode)
        if !worker.batchSizeWasGiven { workerConfiguration.batchSize = 1 }
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            let staging = try await context.openStaging()
            let handler = try TranscodeHandler(configuration: configuration, staging: staging)
            let service = PollingWorker(configuration: workerConfiguration, handler: handler, client: client, logger: context.logger)
            try await runUntilShutdown(context.telemetryServices + context.workerLogServices(client: client) + [service], logger: context.logger) { error in
                // A worker dying of an error says so on the way out (the watchdog would only see silence).
                await AlertSender.sendFatal(
                    role: .transcoder, workerID: service.workerID, error: CatalogDatabase.describe(error), client: client,
                    webhookURL: context.configuration.alertWebhookURL, logger: context.logger)
            }
        }
    }
}

