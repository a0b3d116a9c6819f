import PostgresNIO

/// Everything that can go wrong in the Catalog module: one shape, on the model of postgres-nio's `PSQLError`. The
/// `description` is one line that never carries a secret, a query's text or its parameters; the underlying error
/// (which may) is kept for `debugDescription` only.
public struct CatalogError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure: a struct over a private enum, so that new codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case postgresNotInstalled, embeddedClusterFailed, unreachable, connectionLost, migrationFailed, schemaTampered, queryFailed, fenced
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No PostgreSQL server programs to run the embedded cluster with.
        public static let postgresNotInstalled = Code(.postgresNotInstalled)
        /// The embedded cluster could not be created, started or reached.
        public static let embeddedClusterFailed = Code(.embeddedClusterFailed)
        /// The database server did not answer.
        public static let unreachable = Code(.unreachable)
        /// A connection held for several statements closed under them (see `CatalogConnection`).
        public static let connectionLost = Code(.connectionLost)
        public static let migrationFailed = Code(.migrationFailed)
        /// An applied migration's recorded checksum does not match the code's.
        public static let schemaTampered = Code(.schemaTampered)
        /// A statement failed (the server's message is in `message`).
        public static let queryFailed = Code(.queryFailed)
        /// What a worker was writing was taken from it (its heartbeat went stale and the sweep gave it up).
        public static let fenced = Code(.fenced)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The server's SQLSTATE when a statement failed (`40001` serialization failure, `23505` unique violation…):
    /// safe to show and to match on, for callers that retry.
    public let sqlState: String?
    /// The error behind this one (a `PSQLError`…), for `debugDescription` only.
    public let underlying: (any Error)?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.underlying = underlying
    }

    public var description: String { message }

    public var debugDescription: String {
        guard let underlying else { return "CatalogError(\(code)): \(message)" }
        return "CatalogError(\(code)): \(message); underlying: \(String(reflecting: underlying))"
    }

    /// Runs `body` and turns a database error into `code` (`queryFailed`), named by `operation` ("claim due
    /// alerts"), with the server's message and SQLSTATE. Every other error passes through unchanged: cancellation,
    /// a `CatalogError`, and the caller's own errors, also when a transaction wrapped them, so that callers keep
    /// matching on their domain errors.
    static func wrapping<Result>(
        _ operation: String, code: Code = .queryFailed, _ body: () async throws -> Result
    ) async throws -> Result {
        do {
            return try await body()
        } catch {
            throw converting(error, operation: operation, code: code)
        }
    }

    private static func converting(_ error: any Error, operation: String, code: Code) -> any Error {
        // A transaction wraps whatever its closure threw; what is not the database's goes back out as it was.
        if let transaction = error as? PostgresTransactionError, let closure = transaction.closureError, !isDatabaseError(closure) {
            return closure
        }
        guard isDatabaseError(error) else { return error }
        if isConnectionLoss(error) {
            return CatalogError(.connectionLost, "catalog: cannot \(operation): \(connectionLostReason)", sqlState: sqlState(of: error), underlying: error)
        }
        return CatalogError(
            code, "catalog: cannot \(operation): \(CatalogDatabase.describe(error))", sqlState: sqlState(of: error), underlying: error)
    }

    /// The session ended under a statement: closed by either side, or ended by the server (a restart,
    /// `pg_terminate_backend`: SQLSTATE 57P01, 57P02, 57P03).
    private static func isConnectionLoss(_ error: any Error) -> Bool {
        if let error = error as? PSQLError, error.code == .clientClosedConnection || error.code == .serverClosedConnection { return true }
        return sqlState(of: error).map { ["57P01", "57P02", "57P03"].contains($0) } ?? false
    }

    /// postgres-nio's own errors, whose descriptions say nothing and whose debug descriptions may show query text.
    private static func isDatabaseError(_ error: any Error) -> Bool {
        error is PSQLError || error is PostgresTransactionError || error is PostgresDecodingError
    }

    private static func sqlState(of error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError {
            // A serialization failure may surface at COMMIT as well as in the closure.
            for part in [error.closureError, error.commitError, error.beginError, error.rollbackError] {
                if let part, let state = sqlState(of: part) { return state }
            }
        }
        return nil
    }
}
