import Logging
import PostgresNIO

/// One connection held for several statements (a transaction, an advisory lock): postgres-nio's `PostgresConnection`
/// with one difference. postgres-nio 1.33 writes a statement to a connection that has closed (the server restarted
/// or ended the session, or the pool shut down) with nowhere to report the failed write, so that statement never
/// returns and the program waits forever. Here it fails at once with `CatalogError.Code.connectionLost`; the
/// server has already rolled back the connection's transaction, so nothing half done stays behind.
///
/// The same hang waits for a statement sent through the pool with `PostgresClient.query`: in the few milliseconds
/// between a pooled connection's session ending while it sat idle and the pool learning of it, the pool hands that
/// connection out, and the statement is written to a closed channel. `PostgresClient.catalogQuery` leases through
/// this type instead, so the check covers it. What is left is a close that lands in the microseconds between the
/// check and the write; postgres-nio owns that one (see docs/architecture.md).
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

/// The rows of one statement, read whole before its connection went back to the pool; `decode` and `for try await`
/// work as on postgres-nio's `PostgresRowSequence`. For statements with a bounded answer (a claim, a batch, a
/// LIMIT). An answer that may be as large as the catalog streams instead, from a `CatalogConnection` held for the
/// read (`withCatalogConnection`).
public struct CatalogRows: AsyncSequence, Sendable {
    public typealias Element = PostgresRow
    public let rows: [PostgresRow]

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[PostgresRow]>
        public mutating func next() async throws -> PostgresRow? { base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: rows.makeIterator()) }

    public func collect() -> [PostgresRow] { rows }
}

extension PostgresClient {
    /// One statement on a pooled connection, checked as `CatalogConnection.query` checks it, so a connection whose
    /// session ended while idle in the pool fails with `connectionLost` instead of never answering (postgres-nio's
    /// own `query` writes to it regardless). The answer is read whole before the connection goes back.
    @discardableResult
    public func catalogQuery(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> CatalogRows {
        try await withConnection { connection in
            CatalogRows(rows: try await CatalogConnection(connection).query(query, logger: logger, file: file, line: line).collect())
        }
    }

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
