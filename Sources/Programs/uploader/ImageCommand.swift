import ArgumentParser
import Catalog
import CommandSupport
import UploadCommandSupport
import Foundation
import ObjectStore
import PipelineCore
import Upload
import SourceReading

/// `uploader image DEVICE_OR_FILE --label LABEL`: keeps a whole disc as an ISO image.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Keep a whole disc (a device such as /dev/sr0, or an image file) as one ISO image.",
        discussion: """
            Sectors are read like GNU ddrescue: a bad area is split, skipped and retried; sectors that stay unreadable are \
            written as zeros and listed in a ddrescue map stored next to the image. Such an image is recorded and \
            reported as degraded. With --spool the image (and its map) is read into the spool at disc speed and waits there \
            as spooled for `uploader send`. Exit codes: 0 clean image stored, 1 degraded image stored or failure, 2 usage error.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The device or image file to read.")
    var device: String

    @OptionGroup var source: SourceOptions

    @OptionGroup(title: "Encryption (age)") var encryption: EncryptionOptions

    @OptionGroup(title: "Bandwidth and time windows") var transfers: TransferLimitOptions

    @OptionGroup(title: "Spool (read now, send later with `uploader send`)") var spool: ReadingSpoolOptions

    @OptionGroup(title: "Family archive") var owner: OwnerOptions

    @Option(help: "Extra passes over unreadable sectors before giving up on them.")
    var retryPasses: Int = 3

    @Flag(help: "Progress and summary as JSON lines on standard output.")
    var json = false

    func validate() throws {
        guard (0...100).contains(retryPasses) else { throw ValidationError("--retry-passes must be between 0 and 100") }
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader).pacingTransfers(transfers)
        let spooling = try spool.resolve(context)
        guard FileManager.default.fileExists(atPath: device) else { throw ValidationError("\(device): no such file or device") }
        var name = URL(fileURLWithPath: device).lastPathComponent
        if !name.lowercased().hasSuffix(".iso") { name += ".iso" }
        var configuration = UploadConfiguration(label: source.label, metadata: try source.parsedMetadata(), note: source.note)
        configuration.keepRaw = source.keepRaw
        configuration.tier = source.tier
        configuration.encryption = try encryption.settings(keyDirectory: context.layout.encryptionKeys)
        let progress = UploadProgress.standard(style: .choose(json: json))
        let imageName = name
        let passes = retryPasses
        let report = try await withUploadRun(
            context, configuration: configuration, owner: owner.owner, progress: progress,
            resumeHint: "run the same command again to continue the image where its upload stopped", spool: spooling
        ) { run in
            try await run.runDiscImage(device: device, imageName: imageName, imagerConfiguration: DiscImagerConfiguration(retryPasses: passes))
        }
        let lines = [
            "image \(imageName) of \(device): \(report.outcome)",
            "  \(report.result.summary)",
            "  sha256 \(report.result.sha256)",
        ]
        if json {
            let event: [String: Any] = [
                "event": "image", "name": imageName, "outcome": report.outcome, "clean": report.result.isClean,
                "bytes": report.result.byteCount, "bad_bytes": report.result.badBytes, "sha256": report.result.sha256,
            ]
            let data = try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for line in lines { print(line) }
        }
        if let spooling, report.outcome.hasPrefix("spooled") {
            // The drive is free now; the image is still only in the spool.
            let message = "\(source.label) is read; you may eject it. Do not destroy it until `uploader audit` says it is safe "
                + "(its image waits in \(spooling.path) for `uploader send`)."
            if json { CommandRunner.printToStandardError(message) } else { print(message) }
        }
        if !report.result.isClean {
            CommandRunner.printToStandardError("DEGRADED: \(report.result.badBytes) bytes could not be read; the image is stored and marked degraded, with its map of bad sectors")
            throw ExitCode(1)
        }
    }
}
