import ArchiveFormat
import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import Hummingbird
import Logging
import Media
import NIOCore
import ObjectStore
import PipelineCore
import ServiceLifecycle
import StatusServer
import UnixSignals
import Upload
import UploadCommandSupport
import SourceReading
import TranscodeStep
import ArchiveStep
import JobQueue
import Maintenance
import SystemIO

/// `pipeline run PATH --label LABEL`: uploader, transcoder, archiver and status server in one process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Upload PATH, transcode its videos, archive everything and show progress, all on this machine.",
        discussion: """
            Uses the same settings as the separate programs (embedded PostgreSQL and file:// buckets under the data \
            directory unless configured). Prints the status page's address, and exits once every file from PATH is \
            archived — or given up on, which it lists. Run the same command again after an interruption to continue.
            With --spool DIR, PATH is read at disc speed into the spool (as `uploader upload --spool`: the disc may be \
            ejected once it says so), and a sender in this process (as `uploader send --watch`, within --bwlimit and \
            --window) moves the files on to staging while the workers archive them.
            Exit codes: 0 everything archived, 1 some files not archived (listed), 2 usage or configuration error, \
            130 interrupted.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The directory, mounted disc or .iso image to archive.")
    var path: String

    @OptionGroup var source: SourceOptions

    @OptionGroup(title: "Encryption (age)") var encryption: EncryptionOptions

    @OptionGroup(title: "Bandwidth and time windows (every S3 transfer of the run)") var transfers: TransferLimitOptions

    @OptionGroup(title: "Family archive") var owner: OwnerOptions

    @OptionGroup(title: "Spool (read at disc speed into a spool; this run sends it on)") var spool: ReadingSpoolOptions

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Skip paths matching this glob (repeatable; '**' spans directories).", valueName: "glob"))
    var excludes: [String] = []

    @OptionGroup(title: "Git work trees and unchanged files") var walk: WalkOptions

    @Option(help: "Files read and uploaded at the same time (1-64).")
    var concurrency: Int = 4

    @Option(help: "Transcoding profile: h265 (default), h264 or av1 (BACKUP_TRANSCODE_PROFILE).")
    var profile: String?

    @Option(help: "Status page address (BACKUP_STATUS_HOST; default 127.0.0.1, or 0.0.0.0 when a token is set).")
    var host: String?

    @Option(help: "Status page port (BACKUP_STATUS_PORT; default 8080; 0 picks a free one).")
    var port: Int?

    @Flag(help: "Keep the status page up after everything is archived, until Ctrl-C.")
    var serve = false

    @Option(help: "Seconds the workers' in-flight jobs may still run after Ctrl-C or SIGTERM before they are released.")
    var shutdownGraceSeconds: Int = 25

    @Flag(help: "Show the workers' informational log lines (by default only warnings, so progress stays readable).")
    var verbose = false

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
        guard shutdownGraceSeconds >= 0 else { throw ValidationError("--shutdown-grace-seconds cannot be negative") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .pipeline).pacingTransfers(transfers)
        let spooling = try spool.resolve(context)
        LibAV.logLevel = .error
        let ingestRoot: IngestRoot
        do {
            ingestRoot = try await IngestRoot.resolve(path)
        } catch let error as IngestError {
            throw ValidationError(error.description)
        }
        let transcodeProfile = try TranscodeProfile.chosen(flag: profile, setting: context.setting(TranscodeProfile.setting))
        var resolvedStatus = try StatusServerConfiguration.fromEnvironment(
            context.settings, host: host, port: port, token: context.configuration.statusToken, alertWebhookURL: context.configuration.alertWebhookURL)
        resolvedStatus.tierClasses = context.configuration.tierClasses
        resolvedStatus.uploads.directory = context.layout.browserUploads
        let statusConfiguration = resolvedStatus
        let configuration = context.configuration
        // The three programs' routine lines would bury the progress; warnings and errors still show.
        var quieter = context.logger
        if !verbose, options.logLevel == nil, context.setting(LogSetup.levelSetting) == nil { quieter.logLevel = .warning }
        let workerLogger = quieter
        let say: @Sendable (String) -> Void = { line in CommandRunner.printToStandardError(line) }

        var uploadConfiguration = UploadConfiguration(
            label: source.label, metadata: try source.parsedMetadata(), note: source.note, excludes: excludes, concurrency: concurrency)

        walk.apply(to: &uploadConfiguration)
        uploadConfiguration.workDirectory = context.layout.uploadSpool
        uploadConfiguration.indexDirectory = context.layout.uploadIndex
        uploadConfiguration.testCrashAfterUpload = context.hooks.uploaderCrashAfterUpload
        uploadConfiguration.keepRaw = source.keepRaw
        uploadConfiguration.tier = source.tier
        uploadConfiguration.encryption = try encryption.settings(keyDirectory: context.layout.encryptionKeys)
        uploadConfiguration.owner = try await SourceOwner.resolve(label: source.label, explicit: owner.owner, context: context)
        let progress = UploadProgress.standard(style: isatty(STDERR_FILENO) == 1 ? .terminal : .silent)
        let layout = context.layout
        let grace = Duration.seconds(shutdownGraceSeconds)
        let archiveConfiguration = ArchiveConfiguration(
            storageClass: configuration.archiveStorageClass, warmStorageClass: configuration.warmStorageClass, workDirectory: layout.archiverWork)

        let label = source.label
        let archiveURL = configuration.archiveURL
        let serve = serve
        let outcome: PipelineOutcome? = try await CatalogDatabase.withMigratedClient(configuration.database, logger: context.logger) { client, _ in
            let staging = try await context.openStaging(logger: workerLogger)
            let archive = try await context.openArchive(logger: workerLogger)
            // With a spool the source is read into it (rows `spooled`), and the sender below moves it on to staging.
            let spoolStore = try await spooling?.open(client: client, context: context)
            say("archiving \(ingestRoot.path) as \"\(source.label)\" into \(configuration.archiveURL)"
                + (spoolStore.map { " through the spool \($0.spool.path)" } ?? ""))
            var sender: [ServiceGroupConfiguration.ServiceConfiguration] = []
            if let spoolStore {
                let spoolSender = SpoolSender(
                    catalog: SpoolCatalog(client: client, logger: workerLogger), spool: try await SpoolStore(spool: spoolStore.spool, limit: nil),
                    staging: staging, configuration: SendConfiguration(limits: context.transferThrottle?.limits), logger: workerLogger)
                sender = [.init(service: SpoolSenderService(sender: spoolSender, poll: .seconds(1), maxBackoff: .seconds(300), onSent: { _ in }, onEvent: say))]
            }

            let transcoder = PollingWorker(
                configuration: PollingWorkerConfiguration(step: .transcode, batchSize: 1, pollInterval: .seconds(1), shutdownGrace: grace),
                handler: try TranscodeHandler(configuration: TranscodeConfiguration(profile: transcodeProfile, workDirectory: layout.transcoderWork), staging: staging),
                client: client, logger: workerLogger)
            var archiveHandler = try ArchiveHandler(configuration: archiveConfiguration, staging: staging, archive: archive)
            archiveHandler.betweenBatches = MaintenanceRunner(archive: archive, settings: MaintenanceSettings(workDirectory: layout.archiverWork))
            let archiver = PollingWorker(
                configuration: PollingWorkerConfiguration(step: .archive, pollInterval: .seconds(1), shutdownGrace: grace),
                handler: archiveHandler, client: client, logger: workerLogger)
            let statusURL = LockedBox<String?>(nil)
            let statusPage = buildStatusApplication(configuration: statusConfiguration, client: client, logger: workerLogger, staging: staging) { port in
                let host = statusConfiguration.host
                let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/"
                statusURL.value = url
                say("status page: \(url)")
            }
            let job = PipelineJob(
                upload: UploadRun(catalog: IngestCatalog(client: client, logger: workerLogger, spoolID: spoolStore?.spool.id),
                                  staging: spoolStore ?? staging, configuration: uploadConfiguration, progress: progress, logger: workerLogger),
                root: ingestRoot, spoolDirectory: layout.uploadSpool, readingSpool: spoolStore?.spool.path, label: source.label, client: client,
                export: CatalogExport(client: client, archive: archive, workDirectory: layout.archiverWork, logger: workerLogger),
                serve: serve, pollInterval: .seconds(1), say: say, logger: workerLogger
            ) { report, completion in
                // Printed as soon as the source settles (with --serve the page then stays up).
                for line in report.summaryLines { print(line) }
                let snapshot = try? await StatusCatalog(client: client, logger: workerLogger).read()
                let url = serve ? statusURL.value : nil
                for line in Self.summary(label: label, completion: completion, snapshot: snapshot, archive: archiveURL, statusURL: url) {
                    print(line)
                }
            }
            try FileManager.default.createDirectory(atPath: layout.archiverWork, withIntermediateDirectories: true)

            // Shut down in reverse order: the job stops first, then the workers release their claims, then the page.
            let group = ServiceGroup(configuration: .init(
                services: (context.telemetryServices + context.workerLogServices(client: client)).map { .init(service: $0) } + [
                    .init(service: statusPage), .init(service: transcoder), .init(service: archiver),
                ] + sender + [
                    .init(service: job, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: workerLogger))
            do {
                try await exitingOnSourceSettingConflicts { try await group.run() }
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                throw ConfigurationError(
                    setting: "BACKUP_STATUS_PORT",
                    problem: "port \(statusConfiguration.port) is already in use; choose another with --port (0 picks a free one)")
            }
            return job.outcome
        }

        switch outcome {
        case .settled(_, let completion)?:
            if !completion.isFullyArchived { throw ExitCode(1) }
        case .interrupted(let stage)?:
            CommandRunner.printToStandardError(
                "\ninterrupted while \(stage): what finished is catalogued; run the same command again to continue where it stopped")
            throw ExitCode(130)
        case nil:
            CommandRunner.printToStandardError("the pipeline stopped before it finished; run the same command again to continue")
            throw ExitCode(1)
        }
    }

    /// The closing lines: what became of the source, and what the archive holds now.
    static func summary(label: String, completion: SourceCompletion, snapshot: StatusSnapshot?, archive: StorageURL, statusURL: String?) -> [String] {
        var lines: [String] = []
        let headline = completion.isFullyArchived ? "everything archived" : "NOT everything archived (\(completion.reasonsNotArchived.joined(separator: "; ")))"
        lines.append("pipeline: \"\(label)\": \(headline) — \(completion.done) of \(completion.files) files safely in the archive")
        if let source = snapshot?.sources.first(where: { $0.label == label }) {
            let states = source.filesByState.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            lines.append("  files by state: \(states.joined(separator: ", "))")
        }
        if let snapshot {
            lines.append("  the whole archive: \(snapshot.filesTotal) files, \(Format.bytes(snapshot.bytesRaw)) original, \(Format.bytes(snapshot.bytesStored)) stored")
            lines.append("  saved: \(Format.bytes(snapshot.bytesSavedTranscoding)) by transcoding, \(Format.bytes(snapshot.bytesSavedDedupe)) by dedupe, "
                + "\(Format.bytes(snapshot.bytesSavedCompression)) by bundle compression")
        }
        lines.append("  archive: \(archive) (catalog export: \(archive.describing(key: CatalogExport.key)))")
        if let statusURL { lines.append("  status page: \(statusURL)") }
        if !completion.notStored.isEmpty {
            lines.append("NOT ARCHIVED (\(completion.notStored.count) files; fix the cause and run again, or see `uploader --help`):")
            lines += completion.notStored.map { "  \($0.path): \($0.state)\($0.error.map { ": \($0)" } ?? "")" }
        }
        if !completion.walkProblems.isEmpty {
            lines.append("NOT READ (\(completion.walkProblems.count) paths; files in or under them may be missing: fix the cause and run again):")
            lines += completion.walkProblems.map { "  \($0.line)" }
        }
        return lines
    }
}
