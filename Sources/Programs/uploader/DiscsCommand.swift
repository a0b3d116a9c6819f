import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import PipelineCore
import SourceReading
import SystemIO
import Upload
import UploadCommandSupport

/// `uploader discs [DEVICE]`: the disc loop. Waits for a disc, stores it, ejects it, waits for the next.
struct DiscsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discs",
        abstract: "Read disc after disc from a drive: store each (files, image or both), eject it, wait for the next.",
        discussion: """
            Each disc gets its own source, labelled by --label-template ("{volume} #{n}": the volume label and the first \
            number that makes the label new). A disc seen before keeps its label, so inserting it again continues it. \
            Data discs are stored as files; a DVD-Video, or a disc whose ISO 9660 view lacks files, is kept as an image \
            as well (source "<label> (image)"). An unreadable or empty disc is reported in one line and ejected; a disc \
            that breaks off mid-read leaves its source marked incomplete. Ctrl-C or SIGTERM stops the loop.
            Exit codes: 0 every disc stored, 1 a disc was unreadable, empty or incomplete (or a failure), 2 usage or \
            configuration error, 130 stopped while a disc was being read (insert it again to continue).
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The drive (e.g. /dev/sr0), a loop device or an image file standing in for one; default: BACKUP_DISC_DEVICE.")
    var device: String?

    @Option(help: ArgumentHelp("How discs are labelled: {volume}, {created} (YYYY-MM-DD), {n} (required); default BACKUP_DISC_LABEL_TEMPLATE or \"{volume} #{n}\".", valueName: "template"))
    var labelTemplate: String?

    @Option(help: "Where {n} starts counting.")
    var firstNumber = 1

    @Option(help: ArgumentHelp("{volume} of a disc without a volume label, when nobody at a terminal names it.", valueName: "name"))
    var fallbackVolume = "Disc"

    @Option(name: .customLong("as"), help: ArgumentHelp("auto (the rule in the README), files, image or both.", valueName: "mode"))
    var mode: DiscReadMode = .auto

    @Option(help: ArgumentHelp("Run this through /bin/sh, with the device as its last argument, instead of the CDROMEJECT ioctl; default BACKUP_EJECT_COMMAND.", valueName: "command"))
    var ejectCommand: String?

    @Flag(help: "Read one disc, then stop.")
    var once = false

    @Option(help: "Read this many discs, then stop.")
    var count: Int?

    @Option(help: "Seconds between two looks at the drive while waiting.")
    var pollSeconds = 1.0

    @Option(help: "Extra passes over unreadable sectors of a disc kept as an image.")
    var retryPasses = 3

    @OptionGroup var source: SourceDetailOptions

    @OptionGroup(title: "Encryption (age)") var encryption: EncryptionOptions

    @OptionGroup(title: "Bandwidth and time windows") var transfers: TransferLimitOptions

    @OptionGroup(title: "Spool (read each disc at disc speed, send later with `uploader send`)") var spool: ReadingSpoolOptions

    @OptionGroup(title: "Family archive") var owner: OwnerOptions

    @Flag(help: "Events and each disc's upload as JSON lines on standard output.")
    var json = false

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        guard firstNumber >= 0 else { throw ValidationError("--first-number must not be negative") }
        guard pollSeconds > 0, pollSeconds <= 3600 else { throw ValidationError("--poll-seconds must be between 0 and 3600") }
        guard (0...100).contains(retryPasses) else { throw ValidationError("--retry-passes must be between 0 and 100") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader).pacingTransfers(transfers)
        let spooling = try spool.resolve(context)
        guard let device = device ?? context.setting("BACKUP_DISC_DEVICE") else {
            throw ConfigurationError(setting: "BACKUP_DISC_DEVICE", problem: "no drive given: pass DEVICE (e.g. /dev/sr0) or set BACKUP_DISC_DEVICE")
        }
        do { try DiscDrive(path: device).check() } catch { throw ValidationError(error.description) }
        let templateText = labelTemplate ?? context.setting("BACKUP_DISC_LABEL_TEMPLATE") ?? DiscLabelTemplate.standard
        let template: DiscLabelTemplate
        do { template = try DiscLabelTemplate(templateText) } catch {
            throw ConfigurationError(setting: labelTemplate == nil ? "BACKUP_DISC_LABEL_TEMPLATE" : "--label-template", problem: error.message)
        }
        var upload = UploadConfiguration(label: "", metadata: try source.parsedMetadata(), note: source.note)
        upload.keepRaw = source.keepRaw
        upload.tier = source.tier
        upload.workDirectory = context.layout.uploadSpool
        upload.encryption = try encryption.settings(keyDirectory: context.layout.encryptionKeys)
        upload.testCrashAfterUpload = context.hooks.uploaderCrashAfterUpload
        upload.owner = try await SourceOwner.resolve(explicit: owner.owner, context: context)
        let style = UploadProgress.Style.choose(json: json)
        var configuration = DiscLoopConfiguration(
            device: device, labelTemplate: template, upload: upload, spoolDirectory: context.layout.uploadSpool, progressStyle: style)
        configuration.firstNumber = firstNumber
        configuration.fallbackVolume = fallbackVolume
        configuration.mode = mode
        configuration.ejectCommand = ejectCommand ?? context.setting("BACKUP_EJECT_COMMAND")
        configuration.pollInterval = .milliseconds(Int64(pollSeconds * 1000))
        configuration.maxDiscs = once ? 1 : count
        configuration.imager = DiscImagerConfiguration(retryPasses: retryPasses)
        configuration.askName = isatty(STDIN_FILENO) == 1 ? Self.ask : nil
        let output = DiscLoopOutput(json: style == .jsonLines)

        if let spooling {
            // Each disc is ejected once it is read; its bytes wait in the spool, not yet in the cloud.
            CommandRunner.printToStandardError("discs are read into the spool \(spooling.path); `uploader send` (or `send --watch`) sends them on. "
                + "Do not destroy a disc until `uploader audit` says it is safe.")
        }
        let loop: DiscLoop
        do {
            loop = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                let (staging, spoolID) = try await uploadTarget(spooling, client: client, context: context)
                let loop = DiscLoop(
                    configuration: configuration, catalog: IngestCatalog(client: client, logger: context.logger, spoolID: spoolID), staging: staging,
                    output: output, logger: context.logger)
                try await exitingOnSourceSettingConflicts { try await runUntilShutdown([loop], logger: context.logger) }
                return loop
            }
        } catch let error as SpoolError {
            throw spoolFailure(error)
        }
        let results = loop.results
        var counts: [DiscResult.Status: Int] = [:]
        for result in results { counts[result.status, default: 0] += 1 }
        var fields: [String: any Sendable] = ["discs": results.count, "interrupted": loop.wasInterrupted]
        var parts: [String] = []
        for status in DiscResult.Status.allCases {
            let count = counts[status] ?? 0
            fields[status.rawValue] = count
            if count > 0 { parts.append("\(count) \(status.rawValue)") }
        }
        let line = "discs: \(results.count) handled" + (parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))") + (loop.wasInterrupted ? "; stopped" : "")
        output.event("discs_summary", fields, line: line)
        if loop.wasInterrupted, loop.wasReadingWhenStopped {
            CommandRunner.printToStandardError("interrupted while a disc was being read: its source is not finished; insert the disc again to continue")
            throw ExitCode(130)
        }
        if results.contains(where: { $0.status != .stored }) { throw ExitCode(1) }
    }

    /// Asks on the terminal (standard error) and reads one line from standard input, off the cooperative pool.
    @Sendable static func ask(_ prompt: String) async -> String? {
        CommandRunner.printToStandardError(prompt)
        return try? await blocking { readLine(strippingNewline: true) }
    }
}

extension DiscReadMode: ExpressibleByArgument {}
