import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import Ingest
import ObjectStore
import PipelineCore

/// `uploader image DEVICE_OR_FILE --label LABEL`: keeps a whole disc as an ISO image.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Keep a whole disc (a device such as /dev/sr0, or an image file) as one ISO image.",
        discussion: """
            Sectors are read like GNU ddrescue: a bad area is split, skipped and retried; sectors that stay unreadable are \
            written as zeros and listed in a ddrescue map stored next to the image. Such an image is recorded and \
            reported as degraded. Exit codes: 0 clean image stored, 1 degraded image stored or failure, 2 usage error.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The device or image file to read.")
    var device: String

    @Option(help: "A name for this disc, e.g. \"DVD 12\".")
    var label: String

    @Option(name: .customLong("meta"), help: ArgumentHelp("Free-form metadata for the source, repeatable.", valueName: "key=value"))
    var metadata: [String] = []

    @Option(help: "A note about the disc.")
    var note: String?

    @Option(help: "Extra passes over unreadable sectors before giving up on them.")
    var retryPasses: Int = 3

    @Flag(help: "Progress and summary as JSON lines on standard output.")
    var json = false

    func validate() throws {
        guard !label.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--label must not be empty") }
        guard (0...100).contains(retryPasses) else { throw ValidationError("--retry-passes must be between 0 and 100") }
        _ = try MetadataOption.parse(metadata)
    }

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader)
        guard FileManager.default.fileExists(atPath: device) else { throw ValidationError("\(device): no such file or device") }
        var name = URL(fileURLWithPath: device).lastPathComponent
        if !name.lowercased().hasSuffix(".iso") { name += ".iso" }
        let configuration = UploadConfiguration(label: label, metadata: try MetadataOption.parse(metadata), note: note)
        let style: UploadProgress.Style = json || isatty(STDERR_FILENO) == 0 ? .jsonLines : .terminal
        let progress = UploadProgress.standard(style: style)
        let imageName = name
        let passes = retryPasses

        let report: DiscImageReport
        do {
            report = try await Interruption.cancellingOnSignals {
                try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                    let staging = try await openObjectStore(
                        url: context.configuration.stagingURL,
                        settings: ObjectStoreSettings(aws: context.configuration.aws, environment: ProcessInfo.processInfo.environment, logger: context.logger))
                    let run = UploadRun(catalog: IngestCatalog(client: client, logger: context.logger), staging: staging,
                                        configuration: configuration, progress: progress, logger: context.logger)
                    return try await run.runDiscImage(device: device, imageName: imageName, imagerConfiguration: DiscImagerConfiguration(retryPasses: passes))
                }
            }
        } catch is Interruption.Interrupted {
            CommandRunner.printToStandardError("\ninterrupted: run the same command again to continue the image where its upload stopped")
            throw ExitCode(130)
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
        if !report.result.isClean {
            CommandRunner.printToStandardError("DEGRADED: \(report.result.badBytes) bytes could not be read; the image is stored and marked degraded, with its map of bad sectors")
            throw ExitCode(1)
        }
    }
}

/// `--meta key=value` options, shared by upload and image.
enum MetadataOption {
    static func parse(_ items: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--meta expects key=value, got '\(item)'")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }
}
