import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import Ingest
import ObjectStore
import PipelineCore

/// What `upload` and `image` both say about the source: its label, metadata and note.
struct SourceOptions: ParsableArguments {
    @Option(help: "A name for this disc or drive, e.g. \"DVD 12\". Running again with the same label continues or updates it.")
    var label: String

    @Option(name: .customLong("meta"), help: ArgumentHelp("Free-form metadata for the source, repeatable.", valueName: "key=value"))
    var metadata: [String] = []

    @Option(help: "A note about the source.")
    var note: String?

    func validate() throws {
        guard !label.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--label must not be empty") }
        _ = try parsedMetadata()
    }

    func parsedMetadata() throws -> [String: String] {
        var result: [String: String] = [:]
        for item in metadata {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--meta expects key=value, got '\(item)'")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }
}

/// Opens the catalog and the staging store, runs `body` with an `UploadRun`, and turns Ctrl-C into a message
/// that says how to continue (exit 130).
func withUploadRun<Result: Sendable>(
    _ context: ProgramContext, configuration: UploadConfiguration, progress: UploadProgress, resumeHint: String,
    _ body: @escaping @Sendable (UploadRun) async throws -> Result
) async throws -> Result {
    do {
        return try await Interruption.cancellingOnSignals {
            try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                let staging = try await openObjectStore(
                    url: context.configuration.stagingURL,
                    settings: ObjectStoreSettings(aws: context.configuration.aws, environment: ProcessInfo.processInfo.environment, logger: context.logger))
                let run = UploadRun(catalog: IngestCatalog(client: client, logger: context.logger), staging: staging,
                                    configuration: configuration, progress: progress, logger: context.logger)
                return try await body(run)
            }
        }
    } catch is Interruption.Interrupted {
        CommandRunner.printToStandardError("\ninterrupted: \(resumeHint)")
        throw ExitCode(130)
    }
}

extension UploadProgress.Style {
    /// JSON lines when asked for, or when nobody watches a terminal.
    static func choose(json: Bool) -> UploadProgress.Style {
        json || isatty(STDERR_FILENO) == 0 ? .jsonLines : .terminal
    }
}
