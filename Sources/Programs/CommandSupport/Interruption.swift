import Dispatch
import Foundation
import SystemIO

/// Runs an operation that Ctrl-C (SIGINT) or SIGTERM cancels instead of killing the process, so that it can stop
/// at a safe point and say how to continue. A second signal stops the process at once, as rclone and restic do:
/// every step is safe to cut off (the database rolls back what was not committed, partial files resume).
public enum Interruption {
    public struct Interrupted: Error, CustomStringConvertible {
        public var description: String { "interrupted" }
    }

    /// Returns the operation's result, or throws `Interrupted` when a signal came: also when the operation returned
    /// after it, since what it reports then (files "failed" with a cancellation) is not what happened.
    public static func cancellingOnSignals<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let task = Task { try await operation() }
        let signals = LockedBox(0)
        let signalSources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                // Signals that came before the handler ran arrive as one event; `data` counts them.
                if signals.withLock({ $0 += max(1, Int(source.data)); return $0 }) > 1 {
                    FileHandle.standardError.write(Data("\ninterrupted again: stopped at once; run the same command again to continue\n".utf8))
                    exit(130)
                }
                task.cancel()
            }
            source.resume()
            return source
        }
        defer {
            for source in signalSources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        let result: Swift.Result<Result, any Error> = await task.result
        // Cancellation surfaces as whatever the operation was doing (an HTTP or database error) as well.
        if task.isCancelled { throw Interrupted() }
        return try result.get()
    }
}
