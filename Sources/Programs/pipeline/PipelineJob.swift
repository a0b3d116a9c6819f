import Catalog
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Upload
import SourceReading
import ArchiveStep
import SystemIO

/// How a one-machine run ended.
enum PipelineOutcome: Sendable {
    /// The upload finished and every file of the source settled: archived, or given up on (listed).
    case settled(UploadReport, SourceCompletion)
    /// Ctrl-C or SIGTERM arrived before that; `stage` says what was running.
    case interrupted(stage: String)
}

/// The part of `pipeline run` that has an end: upload the source, wait until the transcoder and archiver have
/// settled all of it, write the catalog export, then (with `--serve`) keep the status page up until Ctrl-C.
/// Returning ends the whole service group gracefully; the workers release what they hold.
struct PipelineJob: Service {
    let upload: UploadRun
    let root: IngestRoot
    let spoolDirectory: String
    /// The spool the source is read into (`--spool`), whose sender runs beside this job; nil: straight to staging.
    let readingSpool: String?
    let label: String
    let client: PostgresClient
    let export: CatalogExport
    let serve: Bool
    let pollInterval: Duration
    let say: @Sendable (String) -> Void
    let logger: Logger
    let onSettled: @Sendable (UploadReport, SourceCompletion) async -> Void
    let result = LockedBox<PipelineOutcome?>(nil)

    init(
        upload: UploadRun, root: IngestRoot, spoolDirectory: String, readingSpool: String? = nil, label: String, client: PostgresClient, export: CatalogExport,
        serve: Bool, pollInterval: Duration, say: @escaping @Sendable (String) -> Void, logger: Logger,
        onSettled: @escaping @Sendable (UploadReport, SourceCompletion) async -> Void
    ) {
        self.upload = upload
        self.root = root
        self.spoolDirectory = spoolDirectory
        self.readingSpool = readingSpool
        self.label = label
        self.client = client
        self.export = export
        self.serve = serve
        self.pollInterval = pollInterval
        self.say = say
        self.logger = logger
        self.onSettled = onSettled
    }

    var outcome: PipelineOutcome? { result.value }

    func run() async throws {
        guard let report = try await untilShutdown(stage: "uploading", {
            try await root.isImage ? upload.run(isoImage: root.path, spoolDirectory: spoolDirectory) : upload.run(root: root.path)
        }) else { return }
        if let readingSpool {
            say("\(label) is read; you may eject it. Its files wait in \(readingSpool); this run sends them on and ends once they are archived…")
        } else {
            say("upload finished; waiting for the transcoder and archiver…")
        }
        guard let completion = try await untilShutdown(stage: "waiting for the workers", waitUntilSettled) else { return }
        // The index in the archive bucket should know about everything this run archived.
        _ = try await untilShutdown(stage: "writing the catalog export") { try await export.run(waitingForOthers: true) }
        result.value = .settled(report, completion)
        await onSettled(report, completion)
        if serve {
            say("done; the status page stays up until Ctrl-C")
            try? await gracefulShutdown()
        }
    }

    /// Polls the catalog until no file of the source is still on its way, printing progress when it changes.
    private func waitUntilSettled() async throws -> SourceCompletion {
        var lastLine = ""
        var lastPrinted = ContinuousClock.now
        while true {
            let completion = try await SourceCompletion.read(label: label, client: client, logger: logger)
            if completion.isSettled { return completion }
            let line = "  \(completion.done) of \(completion.files) files archived, \(completion.inFlight) in progress"
                + (completion.notStored.isEmpty ? "" : ", \(completion.notStored.count) failed")
            if line != lastLine || ContinuousClock.now - lastPrinted > .seconds(30) {
                say(line)
                lastLine = line
                lastPrinted = .now
            }
            try await Task.sleep(for: pollInterval)
        }
    }

    /// Runs `operation` until it returns or a graceful shutdown (Ctrl-C, SIGTERM) cancels it; nil means interrupted.
    private func untilShutdown<Value: Sendable>(stage: String, _ operation: @escaping @Sendable () async throws -> Value) async throws -> Value? {
        do {
            return try await cancelWhenGracefulShutdown(operation)
        } catch {
            // Cancellation surfaces as whatever was running (a database or HTTP error) as well as CancellationError.
            guard Task.isShuttingDownGracefully || Task.isCancelled else { throw error }
            result.value = .interrupted(stage: stage)
            return nil
        }
    }
}
