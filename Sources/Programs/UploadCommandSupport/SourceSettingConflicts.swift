import ArchiveFormat
import ArgumentParser
import Foundation
import Upload

/// Runs `body` (an upload, a disc loop, a pipeline run); when the source's settings in the catalog and the command
/// disagree — its encryption, or its tier and `--tier` — nothing was read or sent: one line on standard error and
/// exit code 2, as for any other usage error.
public func exitingOnSourceSettingConflicts<Result>(_ body: () async throws -> Result) async throws -> Result {
    do {
        return try await body()
    } catch let error as EncryptionError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    } catch let error as SourceTierError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}
