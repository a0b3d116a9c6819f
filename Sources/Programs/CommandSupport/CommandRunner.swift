import ArgumentParser
import Catalog
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PipelineCore

/// Runs a program's root command with the exit codes the README promises:
/// 0 success, 1 the work failed, 2 usage or configuration error.
public enum CommandRunner {
    public static func main<Root: ParsableCommand>(_ root: Root.Type) async -> Never {
        do {
            var command = try root.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let error as ConfigurationError {
            printToStandardError(error.description)
            exit(2)
        } catch let error as CatalogError {
            printToStandardError("error: \(error)")
            exit(1)
        } catch {
            let code = root.exitCode(for: error)
            if code == .success {
                print(root.fullMessage(for: error))
                exit(0)
            }
            let message = root.fullMessage(for: error)
            printToStandardError(message)
            // ArgumentParser uses 64 for usage errors; this project promises 2, like most Unix tools.
            exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }

    public static func printToStandardError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
