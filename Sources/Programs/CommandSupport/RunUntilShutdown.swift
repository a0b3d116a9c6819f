import Logging
import ServiceLifecycle
import UnixSignals

/// Runs services until they finish or SIGTERM/SIGINT asks them to stop gracefully (ECS and Ctrl-C alike).
/// `onFatal` runs when they stop with an error (before it is rethrown), to send an alert on the way out.
public func runUntilShutdown(
    _ services: [any Service], logger: Logger, onFatal: (@Sendable (any Error) async -> Void)? = nil
) async throws {
    let group = ServiceGroup(configuration: .init(
        // A worker that drained its queue (`--once`) ends the group normally, not as a failure.
        services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch {
        await onFatal?(error)
        throw error
    }
}
