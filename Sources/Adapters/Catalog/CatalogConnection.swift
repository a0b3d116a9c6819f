import Logging
import PostgresNIO

/// One connection held for several statements (a transaction, an advisory lock): postgres-nio's `PostgresConnection`
/// with one difference. postgres-nio 1.33 writes a statement to a connection that has closed (the server restarted
/// or ended the session, or the pool shut down) with nowhere to report the failed write, so that statement never
/// returns and the program waits forever. Here it fails at once with `CatalogError.Code.connectionLost`; the
/// server has already rolled back the connection's transaction, so nothing half done stays behind.
///
/// What this does not cover: a close that lands in the microseconds between the check and the write, and a
/// statement sent through the pool (`PostgresClient.query`) on a connection whose session ended while it sat idle
/// in the pool, before the pool learned of it. postgres-nio owns both; a randomized storm of ended sessions
/// against the archiver still hung it in about one run in three (see docs/architecture.md).
public struct CatalogConnection: Sendable {
    public let underlying: PostgresConnection

    init(_ connection: PostgresConnection) {
        underlying = connection
    }

    public var isClosed: Bool { underlying.isClosed }

    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        guard !underlying.isClosed else { throw CatalogError.connectionLost }
        return try await underlying.query(query, logger: logger, file: file, line: line)
    }
}

extension CatalogError {
    static let connectionLostReason = "the connection to the database was lost (the server restarted or ended the session); what was not committed was rolled back"

    static var connectionLost: CatalogError { CatalogError(.connectionLost, "catalog: " + connectionLostReason) }
}

extension PostgresClient {
    /// One pooled connection for the whole of `body`.
    public func withCatalogConnection<Result>(_ body: (CatalogConnection) async throws -> Result) async throws -> Result {
        try await withConnection { connection in try await body(CatalogConnection(connection)) }
    }

    /// `body` in one transaction: committed when it returns, rolled back when it throws. Unlike postgres-nio's
    /// `withTransaction`, a lost connection is not sent a `ROLLBACK` (which would never return; the server rolls
    /// back on its own), and `body`'s error comes out as it was thrown, not wrapped.
    public func withCatalogTransaction<Result>(logger: Logger, _ body: (CatalogConnection) async throws -> Result) async throws -> Result {
        try await withCatalogConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            let result: Result
            do {
                result = try await body(connection)
            } catch {
                // Not sent on a lost connection (`query` refuses); one that fails leaves the connection to the pool's
                // own checks: `body`'s error is the story.
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            return result
        }
    }
}
