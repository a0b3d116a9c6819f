import Foundation
import Logging
import NIOSSL
import PipelineCore
import PostgresNIO
import SystemIO

extension DatabaseURL {
    /// The PostgresNIO pool configuration for this URL, with libpq's `sslmode` meanings.
    public func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .unixSocket:
            configuration = .init(unixSocketPath: unixSocketPath ?? "", username: user, password: password?.revealed, database: database)
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS =
                switch tlsSettings() {
                case nil: .disable
                case (let configuration, false)?: .prefer(configuration)
                case (let configuration, true)?: .require(configuration)
                }
            configuration = .init(host: host, port: port, username: user, password: password?.revealed, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    /// The same for a single connection, used to check reachability with the real connection error.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        switch endpoint {
        case .unixSocket:
            return .init(unixSocketPath: unixSocketPath ?? "", username: user, password: password?.revealed, database: database)
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS =
                switch tlsSettings() {
                case nil: .disable
                case (let configuration, false)?: .prefer(try NIOSSLContext(configuration: configuration))
                case (let configuration, true)?: .require(try NIOSSLContext(configuration: configuration))
                }
            var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password?.revealed, database: database, tls: tls)
            configuration.options.connectTimeout = .seconds(10)
            return configuration
        }
    }

    /// nil for no TLS; otherwise the TLS configuration and whether TLS is required.
    private func tlsSettings() -> (TLSConfiguration, required: Bool)? {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let path = sslRootCertificatePath { tls.trustRoots = .file(path) }
        switch sslMode {
        case .disable:
            return nil
        case .allow, .prefer:
            // libpq does not verify certificates in these modes either.
            tls.certificateVerification = .none
            return (tls, false)
        case .require:
            tls.certificateVerification = .none
            return (tls, true)
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            return (tls, true)
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            return (tls, true)
        }
    }
}

/// Opens the catalog: starts the embedded cluster when configured, connects, and applies migrations.
public enum CatalogDatabase {
    /// The URL to connect to; for the embedded setting this starts (or reuses) the private cluster.
    public static func resolve(_ setting: DatabaseSetting, logger: Logger) async throws -> DatabaseURL {
        switch setting {
        case .server(let url):
            return url
        case .embedded(let clusterDirectory):
            return try await EmbeddedPostgres(clusterDirectory: clusterDirectory, logger: logger).ensureRunning()
        }
    }

    /// Runs `body` with a connected client (the pool runs for exactly as long as `body`). `checked`: the caller has
    /// just connected to `url` itself, so the pool's first connection needs no check of its own.
    ///
    /// Cancelling `body` (Ctrl-C) does not shut the pool: what `body` does on its way out (a `ROLLBACK`, the rows
    /// it records) must still reach the server. Instead the server is asked to cancel the statements this pool is
    /// running, so that a long one (a rebuild's import) ends now rather than when it is done.
    public static func withClient<Result: Sendable>(
        _ url: DatabaseURL, logger: Logger, checked: Bool = false, _ body: (PostgresClient) async throws -> Result
    ) async throws -> Result {
        // The pool warns when a query races `run()` starting, which every short-lived command does; its
        // connection events stay visible at debug level.
        var poolLogger = logger
        if poolLogger.logLevel > .debug { poolLogger.logLevel = .error }
        if !checked { try await checkReachable(url, logger: logger) }
        var configuration = try url.clientConfiguration()
        // Names this pool's sessions, so that a cancellation can find them (and `pg_stat_activity` shows who runs what).
        let sessionName = "personal-backup \(ProcessInfo.processInfo.processIdentifier) \(UUID().uuidString.prefix(8).lowercased())"
        configuration.options.additionalStartupParameters = [("application_name", sessionName)]
        let client = PostgresClient(configuration: configuration, backgroundLogger: poolLogger)
        // Not a child task: a child would be cancelled with `body`, and postgres-nio then closes connections that
        // `body` still holds (and a statement sent on one never returns).
        let pool = Task { await client.run() }
        do {
            let result = try await withTaskCancellationHandler {
                try await body(client)
            } onCancel: {
                Task { await cancelStatements(url, sessionName: sessionName, logger: logger) }
            }
            pool.cancel()
            await pool.value
            return result
        } catch {
            pool.cancel()
            await pool.value
            throw error
        }
    }

    /// Asks the server to cancel whatever the pool named `sessionName` is running (over a connection of its own:
    /// the pool's are busy). The cancelled statement fails; its transaction rolls back as any failed one does.
    static func cancelStatements(_ url: DatabaseURL, sessionName: String, logger: Logger) async {
        do {
            let connection = try await PostgresConnection.connect(
                on: PostgresConnection.defaultEventLoopGroup.any(), configuration: try url.connectionConfiguration(), id: 0, logger: logger
            ).get()
            let cancelled = try? await connection.query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = \(sessionName) AND state = 'active' AND pid <> pg_backend_pid()",
                logger: logger
            ).collect()
            try? await connection.close()
            if cancelled == nil { logger.debug("could not ask the database to cancel this program's statements") }
        } catch {
            logger.debug("could not ask the database to cancel this program's statements", metadata: ["error": "\(error)"])
        }
    }

    /// Resolves, connects and migrates, then runs `body`: what every program does at start.
    public static func withMigratedClient<Result: Sendable>(
        _ setting: DatabaseSetting, logger: Logger, _ body: (PostgresClient, MigrationReport) async throws -> Result
    ) async throws -> Result {
        let url = try await resolve(setting, logger: logger)
        // The embedded cluster was reached a moment ago (``EmbeddedPostgres/ensureRunning()`` connects to the catalog).
        let checked = if case .embedded = setting { true } else { false }
        return try await withClient(url, logger: logger, checked: checked) { client in
            let report = try await Migrator(logger: logger).migrate(client)
            return try await body(client, report)
        }
    }

    /// One direct connection first: the pool would retry an unreachable server forever, and this reports the
    /// actual cause (refused, timed out, authentication failed, TLS) within the connect timeout.
    public static func checkReachable(_ url: DatabaseURL, logger: Logger) async throws {
        do {
            let connection = try await PostgresConnection.connect(
                on: PostgresConnection.defaultEventLoopGroup.any(), configuration: try url.connectionConfiguration(), id: 0, logger: logger
            ).get()
            try await connection.close()
        } catch let error as PSQLError {
            throw CatalogError(.unreachable, "cannot connect to the database \(url): \(describe(error))")
        } catch let error as NIOSSLError {
            throw CatalogError(.unreachable, "cannot set up TLS for the database \(url): \(error)")
        }
    }

    /// PSQLError's own description hides details on purpose; this keeps the parts a user can act on and no
    /// query text or parameters.
    public static func describe(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] {
            let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + code
        }
        if let underlying = error.underlying {
            return "\(error.code): \(underlying)"
        }
        return "\(error.code)"
    }
}

extension CatalogDatabase {
    /// One line for any error a query may throw: the server's message for database errors (never the query
    /// text or its parameters), the error's own description otherwise.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? CatalogError { return error.description }
        if let error = error as? PSQLError { return describe(error) }
        if let error = error as? PostgresDecodingError {
            // Which column and types, never the value.
            return "cannot decode column \(error.columnName) (\(error.postgresType)) as \(error.targetType): \(error.code)"
        }
        if let error = error as? PostgresTransactionError {
            if let closure = error.closureError { return describe(closure) }
            if let begin = error.beginError { return "starting a transaction failed: " + describe(begin) }
            if let commit = error.commitError { return "committing failed: " + describe(commit) }
            if let rollback = error.rollbackError { return "rolling back failed: " + describe(rollback) }
        }
        return String(describing: error)
    }
}

extension CatalogDatabase {
    /// Whether `SELECT 1` answers within `timeout`. Never waits longer, even when the pool keeps trying to connect.
    public static func isReachable(client: PostgresClient, logger: Logger, timeout: Duration) async -> Bool {
        await firstOf(timeout: timeout, fallback: false) {
            do {
                let rows = try await client.catalogQuery("SELECT 1", logger: logger)
                for try await value in rows.decode(Int.self) { return value == 1 }
                return false
            } catch {
                return false
            }
        }
    }
}
