import PostgresNIO

/// Everything that can go wrong in the Catalog module: one shape, on the model of postgres-nio's `PSQLError`. The
/// `description` is one line that never carries a secret, a query's text or its parameters; the underlying error
/// (which may) is kept for `debugDescription` only.
public struct CatalogError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure: a struct over a private enum, so that new codes can be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case postgresNotInstalled, embeddedClusterFailed, unreachable, migrationFailed, schemaTampered, queryFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No PostgreSQL server programs to run the embedded cluster with.
        public static let postgresNotInstalled = Code(.postgresNotInstalled)
        /// The embedded cluster could not be created, started or reached.
        public static let embeddedClusterFailed = Code(.embeddedClusterFailed)
        /// The database server did not answer.
        public static let unreachable = Code(.unreachable)
        public static let migrationFailed = Code(.migrationFailed)
        /// An applied migration's recorded checksum does not match the code's.
        public static let schemaTampered = Code(.schemaTampered)
        /// A statement failed (the server's message is in `message`).
        public static let queryFailed = Code(.queryFailed)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The error behind this one (a `PSQLError`…), for `debugDescription` only.
    public let underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    public var debugDescription: String {
        guard let underlying else { return "CatalogError(\(code)): \(message)" }
        return "CatalogError(\(code)): \(message); underlying: \(String(reflecting: underlying))"
    }

    /// Runs `body` and turns a database error into `queryFailed`, named by `operation` ("claim due alerts"), with the
    /// server's message. Cancellation and errors that are already `CatalogError` pass through unchanged.
    static func wrapping<Result>(_ operation: String, _ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as CatalogError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw CatalogError(.queryFailed, "catalog: cannot \(operation): \(CatalogDatabase.describe(error))", underlying: error)
        }
    }
}
