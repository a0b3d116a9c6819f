import ArchiveFormat
import ArgumentParser
import Catalog
import CommandSupport
import UploadCommandSupport
import Foundation
import ObjectStore
import PipelineCore
import PostgresNIO
import Restore

/// Opens the catalog and the archive store, runs `body`, and turns a `RestoreError` into one line and an exit
/// code (2 for a request that cannot be served as asked, 1 otherwise), Ctrl-C into 130.
func withArchive<Result: Sendable>(
    _ options: GlobalOptions, archiveURL: StorageURL? = nil, resumeHint: String = "run the same command again",
    transfers: TransferLimitOptions? = nil, _ body: @escaping @Sendable (ProgramContext, PostgresClient, any ObjectStore) async throws -> Result
) async throws -> Result {
    let loaded = try ProgramContext.load(options, role: .uploader)
    let context = try transfers.map { try loaded.pacingTransfers($0) } ?? loaded
    do {
        return try await Interruption.cancellingOnSignals {
            try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                let archive = try await context.openStore(archiveURL ?? context.configuration.archiveURL)
                return try await body(context, client, archive)
            }
        }
    } catch is Interruption.Interrupted {
        CommandRunner.printToStandardError("\ninterrupted: \(resumeHint)")
        throw ExitCode(130)
    } catch let error as RestoreError {
        CommandRunner.printToStandardError("error: \(error)")
        throw ExitCode(error.code == .invalidRequest || error.code == .catalog || error.code == .wrongIdentity ? 2 : 1)
    } catch let error as ObjectStoreError {
        CommandRunner.printToStandardError("error: \(error)")
        throw ExitCode(1)
    }
}

extension RestoreProgress.Style {
    /// JSON lines when asked for, or when standard output is not a terminal.
    static func choose(json: Bool) -> RestoreProgress.Style {
        json || isatty(STDOUT_FILENO) == 0 ? .jsonLines : .terminal
    }
}

extension Listing.Style {
    static func choose(json: Bool) -> Listing.Style {
        json || isatty(STDOUT_FILENO) == 0 ? .jsonLines : .table
    }
}

/// `uploader restore`.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring archived files back: request restores from Deep Archive, wait, download, verify and write them.",
        discussion: """
            Files are written under DIR as <source label>/<path> with their modification times, each checked against its \
            SHA-256 in the catalog before it is moved into place. Objects in DEEP_ARCHIVE need a restore request first (up \
            to 12 hours with the Standard tier, 48 with Bulk); each object is requested once, and running the same \
            command again continues: finished files are kept, partial downloads resume. A transcoded video is restored \
            as its transcode (named <original name>.mp4 or .mkv).
            Exit codes: 0 everything restored and verified, 1 something was not (listed), 2 usage or configuration \
            error, 3 still waiting for the archive (run again later, or use --wait), 130 interrupted.
            """)

    @OptionGroup var options: GlobalOptions

    @OptionGroup(title: "Encrypted sources") var keys: IdentityOptions

    @OptionGroup(title: "Bandwidth and time windows (downloads)") var transfers: TransferLimitOptions

    @OptionGroup(title: "A source as it was") var snapshot: SnapshotOptions

    @Option(help: "Restore the files of this source (its newest versions).")
    var source: String?

    @Option(help: ArgumentHelp("Restore the files whose path matches this glob ('**' spans directories; without '/' it matches names).", valueName: "glob"))
    var path: String?

    @Option(help: ArgumentHelp("Restore every file with this content (SHA-256 of the original, or of a transcode).", valueName: "sha256"))
    var hash: String?

    @Option(help: ArgumentHelp("Where to write the files.", valueName: "dir"))
    var to: String

    @Option(help: "Restore tier for Deep Archive objects: Standard (up to 12 h) or Bulk (up to 48 h, cheaper).")
    var tier: String = "Standard"

    @Option(help: "Days the restored copies stay readable in the archive.")
    var days: Int = 7

    @Flag(help: "Wait for pending restores, checking every --poll-seconds, until everything is written.")
    var wait = false

    @Option(help: "Seconds between checks of pending restores with --wait.")
    var pollSeconds: Double = 600

    @Flag(help: "Replace files in DIR whose content differs.")
    var overwrite = false

    @Flag(help: "Events and summary as JSON lines on standard output.")
    var json = false

    func validate() throws {
        guard source != nil || path != nil || hash != nil else { throw ValidationError("say what to restore: --source LABEL, --path GLOB or --hash SHA256") }
        if snapshot.choice != nil, source == nil || hash != nil { throw ValidationError("--snapshot and --as-of restore one source: give --source (and no --hash)") }
        if let hash { guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else { throw ValidationError("--hash expects 64 hex digits (a SHA-256)") } }
        guard RestoreTier(rawValue: tier.capitalized) == .standard || RestoreTier(rawValue: tier.capitalized) == .bulk else {
            throw ValidationError("--tier must be Standard or Bulk")
        }
        guard (1...365).contains(days) else { throw ValidationError("--days must be between 1 and 365") }
        guard pollSeconds > 0 else { throw ValidationError("--poll-seconds must be positive") }
    }

    func run() async throws {
        let style = RestoreProgress.Style.choose(json: json)
        var configuration = RestoreConfiguration(
            destination: URL(fileURLWithPath: to).standardizedFileURL.path,
            selection: RestoreSelection(sourceLabel: source, hash: hash?.lowercased(), allVersions: hash != nil),
            pathPattern: path, tier: RestoreTier(rawValue: tier.capitalized) ?? .standard, days: days, wait: wait,
            pollInterval: .milliseconds(Int64(pollSeconds * 1000)), overwrite: overwrite)
        configuration.keyring = try keys.keys()
        configuration.snapshot = snapshot.choice
        let restoreConfiguration = configuration
        let report = try await withArchive(
            options, resumeHint: "finished files are kept and partial downloads resume: run the same command again", transfers: transfers
        ) { context, handle, archive in
            var configuration = restoreConfiguration
            configuration.testKillAfterBytes = context.hooks.restoreKillAfterBytes
            let run = RestoreRun(catalog: RestoreCatalog(client: handle, logger: context.logger), archive: archive,
                                 configuration: configuration, progress: RestoreProgress.standard(style: style), logger: context.logger)
            return try await run.run()
        }
        if style == .terminal { for line in report.summaryLines { print(line) } }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// `uploader restore-status`.
struct RestoreStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-status",
        abstract: "List restore requests that are pending or readable, with their expected completion (checked with the archive).")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
        let style = Listing.Style.choose(json: json)
        let lines = try await withArchive(options) { context, handle, archive in
            try await Listing.restoreStatus(catalog: RestoreCatalog(client: handle, logger: context.logger), archive: archive, style: style)
        }
        for line in lines { print(line) }
    }
}

/// `uploader verify`.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check archived objects against the catalog (a rolling sample), and optionally the original medium.",
        discussion: """
            Every object's size and class are checked with HEAD; objects readable without a restore (STANDARD, restored \
            copies, file:// archives) are read back and their SHA-256 compared. --sample checks the objects verified \
            longest ago first, so repeated runs cover the whole archive. --against re-reads the source's original medium \
            and warns about files whose content changed since archiving (bit rot).
            Exit codes: 0 all checked objects (and source files) match, 1 something does not (listed), 2 usage error, 130 \
            interrupted (nothing is recorded for the objects it was reading).
            """)

    @OptionGroup var options: GlobalOptions

    @OptionGroup(title: "Encrypted sources") var keys: IdentityOptions

    @Option(help: "Only objects holding files of this source.")
    var source: String?

    @Option(help: "Percent of the archive objects to check in this run (those checked longest ago first).")
    var sample: Double = 100

    @Option(help: ArgumentHelp("Re-read this directory (the source's mounted disc) and compare it with the catalog; needs --source.", valueName: "path"))
    var against: String?

    @Flag(help: "Events and summary as JSON lines on standard output.")
    var json = false

    @OptionGroup(title: "Bandwidth and time windows (downloads)") var transfers: TransferLimitOptions

    func validate() throws {
        guard sample > 0 && sample <= 100 else { throw ValidationError("--sample must be a percentage above 0 and at most 100") }
        if against != nil && source == nil { throw ValidationError("--against needs --source: which source is on that medium?") }
    }

    func run() async throws {
        let style = RestoreProgress.Style.choose(json: json)
        var verifyConfiguration = VerifyConfiguration(sourceLabel: source, samplePercent: sample, against: against)
        verifyConfiguration.keyring = try keys.keys()
        let configuration = verifyConfiguration
        let report = try await withArchive(options, transfers: transfers) { context, handle, archive in
            try await VerifyRun(catalog: RestoreCatalog(client: handle, logger: context.logger), archive: archive,
                                configuration: configuration, progress: RestoreProgress.standard(style: style)).run()
        }
        if style == .terminal { for line in report.summaryLines { print(line) } }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// `uploader audit`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Prove that each source can be had back from the archive alone: the answer to 'may I destroy the original?'.",
        discussion: """
            For every live file of the source: its content (or, for a duplicate, that of the row holding it, through any \
            chain) must be archived and not deleted; the archive object must exist with the recorded size and class; a \
            bundle member must be listed in the manifest beside the bundle at its offset; where the object is readable \
            without a restore (STANDARD, restored copies, file:// archives) it is read back: its SHA-256, each member's \
            tar header and bytes. Staging never counts. An unfinished or interrupted upload is not safe.
            Exit codes: 0 every audited source is safe to destroy, 1 at least one is not (each problem listed), 2 usage error, \
            130 interrupted (no verdict recorded for the source being checked).
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "Audit only this source (default: every source).")
    var source: String?

    @Flag(help: "Events and summary as JSON lines on standard output.")
    var json = false

    @OptionGroup(title: "Bandwidth and time windows (downloads)") var transfers: TransferLimitOptions

    func run() async throws {
        let style = RestoreProgress.Style.choose(json: json)
        let source = source
        let report = try await withArchive(options, transfers: transfers) { context, handle, archive in
            let workDirectory = context.layout.auditWork
            try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
            return try await AuditRun(catalog: AuditCatalog(client: handle, logger: context.logger), archive: archive,
                                      configuration: AuditConfiguration(sourceLabel: source, workDirectory: workDirectory),
                                      progress: RestoreProgress.standard(style: style)).run()
        }
        if style == .terminal { for line in report.summaryLines { print(line) } }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// `uploader rebuild-catalog`.
struct RebuildCatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild-catalog",
        abstract: "Rebuild the catalog in an empty database from the archive bucket alone (export and manifests, no restore needed).",
        discussion: "Exit codes: 0 everything recovered, 1 something could not be (listed), 2 usage error or a database that is not empty, 130 interrupted (the database is left empty).")

    @OptionGroup var options: GlobalOptions

    @OptionGroup(title: "Encrypted sources") var keys: IdentityOptions

    @Option(help: ArgumentHelp("The archive bucket (s3://bucket/prefix or file:///path); default BACKUP_ARCHIVE_URL.", valueName: "url"))
    var from: String?

    @Flag(help: "Summary as JSON lines on standard output.")
    var json = false

    @OptionGroup(title: "Bandwidth and time windows (downloads)") var transfers: TransferLimitOptions

    func run() async throws {
        let url: StorageURL?
        do {
            url = try from.map { try StorageURL(parsing: $0) }
        } catch {
            throw ValidationError("--from: \(error)")
        }
        let style = RestoreProgress.Style.choose(json: json)
        let keyring = try keys.keys()
        let report = try await withArchive(options, archiveURL: url, transfers: transfers) { context, handle, archive in
            try await RebuildRun(catalog: RebuildCatalog(client: handle, logger: context.logger), archive: archive,
                                 workDirectory: context.layout.rebuildWork,
                                 progress: RestoreProgress.standard(style: style), logger: context.logger, keyring: keyring).run()
        }
        if style == .terminal { for line in report.summaryLines { print(line) } }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// `uploader ls`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List catalogued files: their state and where they are archived.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Only this source.")
    var source: String?

    @Argument(help: ArgumentHelp("Only paths matching this glob.", valueName: "path-glob"))
    var pattern: String?

    @Flag(help: "Every version, not only the newest of each path.")
    var allVersions = false

    @Flag(help: "One JSON object per line (the default when standard output is not a terminal).")
    var json = false

    func run() async throws {
        let style = Listing.Style.choose(json: json)
        let selection = RestoreSelection(sourceLabel: source, allVersions: allVersions)
        let (source, pattern) = (self.source, self.pattern)
        let lines = try await withArchive(options) { context, handle, _ in
            let catalog = RestoreCatalog(client: handle, logger: context.logger)
            if let source, try await !catalog.sourceExists(source) {
                throw RestoreError(.invalidRequest, "no source is labelled '\(source)' (uploader sources lists them)")
            }
            return try Listing.files(try await catalog.files(selection), pattern: pattern, style: style)
        }
        for line in lines { print(line) }
    }
}

/// `uploader sources`.
struct SourcesCommand: AsyncParsableCommand {
    /// One line per spool: where it is, what waits in it, and what its sender last said.
    static func spoolLines(_ spools: [SpoolSenderStatus], style: Listing.Style) -> [String] {
        spools.map { spool in
            let said = spool.said + (spool.updatedAt.map { ", \(Format.timestamp($0))" } ?? "")
            if style == .jsonLines {
                return SendCommand.jsonLine([
                    "spool": spool.path, "spool_id": spool.spoolID.uuidString.lowercased(), "host": spool.host, "files_waiting": spool.files,
                    "bytes_waiting": spool.bytes, "sender_state": spool.state ?? NSNull(), "sender_detail": spool.detail ?? NSNull(),
                ])
            }
            return "spool \(spool.path) on \(spool.host): \(spool.files) file\(spool.files == 1 ? "" : "s") (\(Format.bytes(spool.bytes))) waiting to send; \(said)"
        }
    }

    static let configuration = CommandConfiguration(commandName: "sources", abstract: "List the sources (discs, drives) with their files by state.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "One JSON object per line (the default when standard output is not a terminal).")
    var json = false

    func run() async throws {
        let style = Listing.Style.choose(json: json)
        let lines = try await withArchive(options) { context, handle, _ in
            let spoolCatalog = SpoolCatalog(client: handle, logger: context.logger)
            let spools = try await spoolCatalog.senders()
            return Listing.sources(
                try await RestoreCatalog(client: handle, logger: context.logger).sources(), style: style,
                waiting: try await spoolCatalog.waitingBySource(), spools: spools)
                + Self.spoolLines(spools, style: style)
        }
        for line in lines { print(line) }
    }
}
