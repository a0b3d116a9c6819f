import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import Hummingbird
import PipelineCore
import ServiceLifecycle
import StatusServer

/// `status-server serve`: the page, the JSON API, metrics, the health check and the alert watchdog.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the status page and run the alert watchdog (the default command).",
        discussion: """
            Without BACKUP_STATUS_TOKEN the server listens on loopback only. With it, the status routes (/, /api/status, \
            /metrics) need 'Authorization: Bearer <token>' or the cookie its form sets. The family routes (/login, \
            /account, /api/sources, /files/{id}/download, /upload and the tus uploads on /api/uploads) need a user's session \
            or personal token (see `uploader users`). Browser uploads wait in <data dir>/browser-uploads until complete.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "Address to listen on (BACKUP_STATUS_HOST; default 127.0.0.1, or 0.0.0.0 when a token is set).")
    var host: String?

    @Option(help: "Port to listen on (BACKUP_STATUS_PORT; default 8080).")
    var port: Int?

    func run() async throws {
        let context = try ProgramContext.load(options, role: .statusServer)
        var resolved = try StatusServerConfiguration.fromEnvironment(
            context.settings, host: host, port: port,
            token: context.configuration.statusToken, alertWebhookURL: context.configuration.alertWebhookURL)
        resolved.tierClasses = context.configuration.tierClasses
        resolved.uploads.directory = context.layout.browserUploads
        let configuration = resolved
        let logger = context.logger
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: logger) { client, _ in
            // The family API streams staged files from here (GET /files/{id}/download).
            let staging = try await context.openStaging(logger: logger)
            let application = buildStatusApplication(configuration: configuration, client: client, logger: logger, staging: staging) { port in
                print("status page: http://\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(port)/")
            }
            try await runUntilShutdown(context.telemetryServices + context.workerLogServices(client: client) + [application], logger: logger)
        }
    }
}
