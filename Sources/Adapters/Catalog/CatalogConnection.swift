import Logging
import NIOCore
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
/// this type instead, so the check covers it. `query` checks and writes in one step on the connection's event
/// loop, so no close can land in between; only `stream` (the uploader's lists that grow with the catalog) checks
/// from the caller's thread.
public struct CatalogConnection: Sendable {
    public let underlying: PostgresConnection

    init(_ connection: PostgresConnection) {
        underlying = connection
    }

    public var isClosed: Bool { underlying.isClosed }

    /// One statement, its answer read whole, with the check and the write done in one step on the connection's
    /// event loop. A close is handled on that loop too, so it cannot land between them: either the write finds the
    /// channel closed and fails at once, or it reaches postgres-nio's handler, which fails it when the close comes.
    /// (Checked on the caller's thread instead, a close landing between the check and postgres-nio's write was
    /// never answered: 1 archiver pass in 4 of `DatabaseLossTests` hung once its storm was no longer starved.)
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> CatalogRows {
        let connection = underlying
        let eventLoop = connection.eventLoop
        let result = try await eventLoop.flatSubmit { () -> EventLoopFuture<PostgresQueryResult> in
            guard !connection.isClosed else { return eventLoop.makeFailedFuture(CatalogError.connectionLost) }
            return connection.query(query, logger: logger, file: file, line: line)
        }.get()
        return CatalogRows(rows: result.rows)
    }

    /// One statement whose answer streams row by row, for answers that grow with the catalog (the uploader's
    /// restore, verify and audit lists). Checked on the caller's thread: postgres-nio's streaming query cannot be
    /// started on its event loop from here, so a close in the microseconds between the check and its write can
    /// still leave the command waiting, until a second Ctrl-C.
    public func stream(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
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
            try await CatalogConnection(connection).query(query, logger: logger, file: file, line: line)
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
