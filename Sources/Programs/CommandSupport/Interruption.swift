import Dispatch
import Foundation

/// Runs an operation that Ctrl-C (SIGINT) or SIGTERM cancels instead of killing the process, so that it can stop
/// at a safe point and say how to continue.
public enum Interruption {
    public struct Interrupted: Error, CustomStringConvertible {
        public var description: String { "interrupted" }
    }

    /// Returns the operation's result, or throws `Interrupted` when a signal cancelled it.
    public static func cancellingOnSignals<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let task = Task { try await operation() }
        let signalSources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        defer {
            for source in signalSources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        do {
            return try await task.value
        } catch {
            // Cancellation surfaces as whatever the operation was doing (an HTTP or database error) as well.
            if task.isCancelled { throw Interrupted() }
            throw error
        }
    }
}
