import Logging
import ServiceLifecycle
import UnixSignals

/// Runs services until they finish or SIGTERM/SIGINT asks them to stop gracefully (ECS and Ctrl-C alike).
public func runUntilShutdown(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(
        // A worker that drained its queue (`--once`) ends the group normally, not as a failure.
        services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}
