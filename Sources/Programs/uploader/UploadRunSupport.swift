import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import ObjectStore
import PipelineCore
import Upload
import UploadCommandSupport

/// Opens the catalog and the staging store, resolves the source's owner (`--owner`, see ``SourceOwner``) in the same
/// session, before anything is read, runs `body` with an `UploadRun`, and turns Ctrl-C into a message that says
/// how to continue (exit 130).
func withUploadRun<Result: Sendable>(
    _ context: ProgramContext, configuration: UploadConfiguration, owner explicitOwner: String?, progress: UploadProgress, resumeHint: String,
    spool: SpoolSetting? = nil, _ body: @escaping @Sendable (UploadRun) async throws -> Result
) async throws -> Result {
    do {
        return try await exitingOnSourceSettingConflicts {
            try await Interruption.cancellingOnSignals {
                try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
                    var configuration = configuration
                    configuration.owner = try await SourceOwner.resolve(
                        label: configuration.label, explicit: explicitOwner, accounts: AccountCatalog(client: client, logger: context.logger),
                        ingest: IngestCatalog(client: client, logger: context.logger), context: context)
                    // With a spool, the bytes go into the spool directory and the rows say `spooled`; `uploader send` moves them on.
                    let (staging, spoolID) = try await uploadTarget(spool, client: client, context: context)
                    configuration.testCrashAfterUpload = context.hooks.uploaderCrashAfterUpload
                    configuration.testCrashAfterImageMap = context.hooks.uploaderCrashAfterImageMap
                    let run = UploadRun(catalog: IngestCatalog(client: client, logger: context.logger, spoolID: spoolID), staging: staging,
                                        configuration: configuration, progress: progress, logger: context.logger)
                    return try await body(run)
                }
            }
        }
    } catch is Interruption.Interrupted {
        CommandRunner.printToStandardError("\ninterrupted: \(resumeHint)")
        throw ExitCode(130)
    } catch let error as SpoolError {
        throw spoolFailure(error)
    }
}

extension UploadProgress.Style {
    /// JSON lines when asked for, or when nobody watches a terminal.
    static func choose(json: Bool) -> UploadProgress.Style {
        json || isatty(STDERR_FILENO) == 0 ? .jsonLines : .terminal
    }
}
