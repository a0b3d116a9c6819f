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

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Skip paths matching this glob (repeatable; '**' spans directories).", valueName: "glob"))
    var excludes: [String] = []

    @Flag(name: .customLong("no-gitignore"), help: "In git work trees, keep what git ignores too (by default it is left out and counted).")
    var noGitIgnore = false

    @Option(name: .customLong("check-unchanged"), help: ArgumentHelp(
        "Read this percentage of the files unchanged by size and time again, to catch bit rot on the original (a rolling sample: every file within 100/PERCENT runs).",
        valueName: "percent"))
    var checkUnchanged: Int = 0

    @Flag(name: .customLong("git-as-files"), help: "Store git repositories file by file (by default each is kept whole as one file: a verified bundle and the rest of .git).")
    var gitAsFiles = false

    @Option(help: "Files read and uploaded at the same time (1-64).")
    var concurrency: Int = 8

    @Flag(help: "Walk and compare with the catalog, but read and store nothing.")
    var dryRun = false

    @Flag(help: "Progress and summary as JSON lines on standard output.")
    var json = false

    func validate() throws {
        guard (0...100).contains(checkUnchanged) else { throw ValidationError("--check-unchanged is a percentage, 0 to 100") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader).pacingTransfers(transfers)
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
        configuration.respectGitIgnore = !noGitIgnore
        configuration.keepGitRepositoriesWhole = !gitAsFiles
        configuration.checkUnchangedPercent = checkUnchanged
        configuration.workDirectory = context.layout.uploadSpool
        configuration.keepRaw = source.keepRaw
        configuration.tier = source.tier
        configuration.encryption = try encryption.settings(keyDirectory: context.layout.encryptionKeys)
        let style = UploadProgress.Style.choose(json: json)
        let progress = UploadProgress.standard(style: style)
        let spoolDirectory = context.layout.uploadSpool
        let report = try await withUploadRun(
            context, configuration: configuration, progress: progress,
            resumeHint: "files finished so far are catalogued; run the same command again to continue where it stopped"
        ) { run in
            try await isImage ? run.run(isoImage: root, spoolDirectory: spoolDirectory) : run.run(root: root)
        }
        if style != .jsonLines {
            for line in report.summaryLines { print(line) }
        }
        if !report.isComplete { throw ExitCode(1) }
    }
}
