import ArgumentParser
import Catalog
import CommandSupport
import UploadCommandSupport
import Foundation
import ObjectStore
import PipelineCore
import Upload
import SourceReading

/// `uploader upload PATH --label LABEL`: ingests a directory or mounted disc into staging and the catalog.
struct UploadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Ingest a directory, a mounted disc or an ISO image's files into the staging bucket and the catalog.",
        discussion: """
            Each file is read once, hashed (SHA-256) and uploaded in the same stream; content that is already stored is \
            recorded as a duplicate without uploading. Run the same command again after an interruption: finished files \
            are skipped and a half-sent large file continues where it stopped.
            Exit codes: 0 all stored, 1 incomplete: some files not stored, or directories that could not be opened or \
            listed to the end, or entries that could not be inspected (all listed by path; the source is not called \
            archived until a run sees all of it), 2 usage or configuration error, 130 interrupted.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The directory, mounted disc or .iso image to ingest.")
    var path: String

    @OptionGroup var source: SourceOptions

    @OptionGroup(title: "Encryption (age)") var encryption: EncryptionOptions

    @OptionGroup(title: "Bandwidth and time windows") var transfers: TransferLimitOptions

    @OptionGroup(title: "Spool (read now, send later with `uploader send`)") var spool: ReadingSpoolOptions

    @OptionGroup(title: "Family archive") var owner: OwnerOptions

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Skip paths matching this glob (repeatable; '**' spans directories).", valueName: "glob"))
    var excludes: [String] = []

    @OptionGroup(title: "Git work trees and unchanged files") var walk: WalkOptions

    @Option(help: "Files read and uploaded at the same time (1-64).")
    var concurrency: Int = 8

    @Flag(help: "Walk and compare with the catalog, but read and store nothing.")
    var dryRun = false

    @Flag(help: "Progress and summary as JSON lines on standard output.")
    var json = false

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader).pacingTransfers(transfers)
        let spooling = try spool.resolve(context)
        let ingestRoot: IngestRoot
        do {
            ingestRoot = try await IngestRoot.resolve(path)
        } catch let error as IngestError {
            throw ValidationError(error.description)
        }
        let root = ingestRoot.path
        let isImage = ingestRoot.isImage
        var configuration = UploadConfiguration(
            label: source.label, metadata: try source.parsedMetadata(), note: source.note, excludes: excludes, concurrency: concurrency, dryRun: dryRun)
        walk.apply(to: &configuration)
        configuration.workDirectory = context.layout.uploadSpool
        configuration.indexDirectory = context.layout.uploadIndex
        configuration.keepRaw = source.keepRaw
        configuration.tier = source.tier
        configuration.encryption = try encryption.settings(keyDirectory: context.layout.encryptionKeys)
        let style = UploadProgress.Style.choose(json: json)
        let progress = UploadProgress.standard(style: style)
        let spoolDirectory = context.layout.uploadSpool
        let report = try await withUploadRun(
            context, configuration: configuration, owner: owner.owner, progress: progress,
            resumeHint: "files finished so far are catalogued; run the same command again to continue where it stopped",
            spool: dryRun ? nil : spooling
        ) { run in
            try await isImage ? run.run(isoImage: root, spoolDirectory: spoolDirectory) : run.run(root: root)
        }
        if style != .jsonLines {
            for line in report.summaryLines { print(line) }
        }
        if !report.isComplete { throw ExitCode(1) }
        if let spooling, !dryRun {
            // The disc is free now; its bytes are still only in the spool.
            let message = "\(source.label) is read; you may eject it. Do not destroy it until `uploader audit` says it is safe "
                + "(its files wait in \(spooling.path) for `uploader send`)."
            if style == .jsonLines { CommandRunner.printToStandardError(message) } else { print(message) }
        }
    }
}
