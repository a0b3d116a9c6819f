// The status server for bench/status/run: migrates the catalog at DATABASE_URL, then serves it on loopback.
//
//   status-bench migrate
//   status-bench serve PORT [SNAPSHOT_MAX_AGE_MS]
//
// SNAPSHOT_MAX_AGE_MS 0 makes every request read the catalog (the cold path); the server's default is 2000.
import Catalog
import Foundation
import Hummingbird
import Logging
import PipelineCore
import StatusServer
import Alerts

var logger = Logger(label: "status-bench")
logger.logLevel = .notice
let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first, let text = ProcessInfo.processInfo.environment["DATABASE_URL"] else {
    FileHandle.standardError.write(Data("usage: DATABASE_URL=… status-bench migrate | serve PORT [SNAPSHOT_MAX_AGE_MS]\n".utf8))
    exit(2)
}
do {
    let url = try DatabaseURL(parsing: text)
    try await CatalogDatabase.withClient(url, logger: logger) { client in
        try await Migrator(logger: logger).migrate(client)
        guard command == "serve" else { return }
        let port = arguments.count > 1 ? Int(arguments[1]) ?? 8080 : 8080
        let maxAge = arguments.count > 2 ? Int(arguments[2]) ?? 2000 : 2000
        let configuration = try StatusServerConfiguration(
            host: "127.0.0.1", port: port, snapshotMaxAge: .milliseconds(maxAge), watchdog: WatchdogSettings())
        try await buildStatusApplication(configuration: configuration, client: client, logger: logger).runService()
    }
} catch {
    FileHandle.standardError.write(Data("status-bench: \(error)\n".utf8))
    exit(1)
}
