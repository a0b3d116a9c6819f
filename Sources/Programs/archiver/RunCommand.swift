import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import ObjectStore
import PipelineCore
import Alerts
import ArchiveStep
import JobQueue
import Maintenance

/// `archiver run`: the polling worker. SIGTERM or Ctrl-C stops claiming, lets the batch finish within the
/// grace period, releases the rest and exits 0.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Poll the catalog and archive what is ready (the default command).",
        discussion: """
            Claims staged files (and transcoded videos) from the catalog, stores them in the archive bucket and records \
            where they went. Run as many copies as you like: they share the queue. With --once it drains the queue and exits.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var worker: WorkerOptions

    @Option(help: ArgumentHelp("Files smaller than this are packed into bundles (e.g. 16MiB).", valueName: "size"))
    var smallFileThreshold: ByteSize = ByteSize(bytes: 16 << 20)

    @Option(help: ArgumentHelp("Target size of a bundle (e.g. 256MiB).", valueName: "size"))
    var bundleSize: ByteSize = ByteSize(bytes: 256 << 20)

    @Option(help: ArgumentHelp("Target size of a warm source's bundle (e.g. 8MiB); its files of this size or more are stored alone.", valueName: "size"))
    var warmBundleSize: ByteSize = ByteSize(bytes: 8 << 20)

    @Option(help: ArgumentHelp("Days a delete request waits before the data is removed.", valueName: "days"))
    var deleteGraceDays: Double = 30

    @Option(help: ArgumentHelp("Seconds between catalog exports while busy (always at the end of a drain).", valueName: "seconds"))
    var exportInterval: Int = 60

    @Option(help: ArgumentHelp(
        "Write the catalog export whole again once the changed rows written since the last whole one reach this fraction of it (in between, only changed rows are written).",
        valueName: "fraction"))
    var exportCompactFraction: Double = 0.25

    @Option(help: "Where bundles are assembled (default: <data dir>/tmp/archiver).")
    var workDirectory: String?

    func validate() throws {
        guard smallFileThreshold.bytes >= 1 else { throw ValidationError("--small-file-threshold must be at least 1 byte") }
        guard bundleSize.bytes >= smallFileThreshold.bytes else { throw ValidationError("--bundle-size must be at least --small-file-threshold") }
        guard warmBundleSize.bytes >= 1 else { throw ValidationError("--warm-bundle-size must be at least 1 byte") }
        guard deleteGraceDays >= 0 else { throw ValidationError("--delete-grace-days cannot be negative") }
        guard exportInterval >= 0 else { throw ValidationError("--export-interval cannot be negative") }
        guard exportCompactFraction > 0 else { throw ValidationError("--export-compact-fraction must be above 0") }
        try worker.validate()
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .archiver)
        let archiveConfiguration = ArchiveConfiguration(
            smallFileThreshold: smallFileThreshold.bytes, bundleTargetSize: bundleSize.bytes,
            storageClass: context.configuration.archiveStorageClass,
            warmStorageClass: context.configuration.warmStorageClass, warmBundleTargetSize: warmBundleSize.bytes,
            catalogExportInterval: .seconds(exportInterval), catalogExportCompactFraction: exportCompactFraction, deleteGrace: .milliseconds(Int64(deleteGraceDays * 86_400_000)),
            orphanAfter: .seconds(Int64(worker.leaseSeconds * 3)),
            workDirectory: workDirectory ?? context.layout.archiverWork,
            crashPoint: context.hooks.archiverCrashAt.flatMap(ArchiveCrashPoint.init(rawValue:)))
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            let staging = try await context.openStaging()
            let archive = try await context.openArchive()
            var handler = try ArchiveHandler(configuration: archiveConfiguration, staging: staging, archive: archive)
            handler.betweenBatches = MaintenanceRunner(archive: archive, settings: MaintenanceSettings(workDirectory: archiveConfiguration.workDirectory))
            let service = PollingWorker(configuration: worker.configuration(step: .archive), handler: handler, client: client, logger: context.logger)
            try await runUntilShutdown(context.telemetryServices + context.workerLogServices(client: client) + [service], logger: context.logger) { error in
                // A worker dying of an error says so on the way out (the watchdog would only see silence).
                await AlertSender.sendFatal(
                    role: .archiver, workerID: service.workerID, error: CatalogDatabase.describe(error), client: client,
                    webhookURL: context.configuration.alertWebhookURL, logger: context.logger)
            }
        }
    }
}

/// `archiver export-catalog`: writes the catalog export now.
struct ExportCatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-catalog",
        abstract: "Write the whole catalog as gzip JSON lines to catalog/catalog.jsonl.gz in the archive bucket (waiting for an export in progress).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let context = try ProgramContext.load(options, role: .archiver)
        let directory = context.layout.archiverWork
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rows = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            let archive = try await context.openArchive()
            return try await CatalogExport(
                client: client, archive: archive, workDirectory: directory, policy: CatalogExportPolicy(whole: true), logger: context.logger
            ).run(waitingForOthers: true)?.rows ?? 0
        }
        print("exported \(rows) rows to \(context.configuration.archiveURL.describing(key: CatalogExport.key))")
    }
}

