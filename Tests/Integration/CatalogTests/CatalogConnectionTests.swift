import Catalog
import Foundation
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// A held connection that the server closes (a restart, `pg_terminate_backend`) fails the next statement at once
/// instead of never answering (postgres-nio 1.33 drops a statement written to a closed connection), and the
/// transaction comes out rolled back, with the catalog's one-line error.
@Suite("a held connection the server closes")
struct CatalogConnectionTests {
    let logger = TestEnvironment.logger

    /// Runs `body` in a task of its own and waits for it at most `limit`: a statement that never answers cannot be
    /// cancelled, so a hang is reported here instead of hanging the test run.
    func finishing(within limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let outcome = LockedBox<Result<Void, any Error>?>(nil)
        _ = Task {
            do { try await body(); outcome.value = .success(()) } catch { outcome.value = .failure(error) }
        }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let result = outcome.value { return try result.get() }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("did not finish within \(limit): a statement on the closed connection never answered")
    }

    @Test("the session ended between two statements of a transaction: the next one throws connectionLost, nothing of the transaction stays, the pool goes on")
    func sessionEndedBetweenStatements() async throws {
        try await TestDatabase.withFresh { _, client in
            let logger = logger
            try await finishing(within: .seconds(30)) {
                let thrown = await #expect(throws: CatalogError.self) {
                    try await client.withCatalogTransaction(logger: logger) { connection in
                        try await connection.query("CREATE TABLE written_before_the_loss (x int)", logger: logger)
                        var backend: Int32 = 0
                        for try await pid in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) { backend = pid }
                        // Another session ends this one, as a server restart or an administrator would.
                        _ = try await client.query("SELECT pg_terminate_backend(\(backend))", logger: logger).collect()
                        let deadline = ContinuousClock.now + .seconds(10)
                        while !connection.isClosed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
                        #expect(connection.isClosed)
                        try await connection.query("INSERT INTO written_before_the_loss VALUES (1)", logger: logger)
                    }
                }
                #expect(thrown?.code == .connectionLost, "\(String(describing: thrown))")
                #expect(thrown?.description.contains("connection to the database was lost") == true)
            }
            // The server rolled the transaction back; a new connection from the same pool works.
            var tables: Int64 = -1
            for try await count in try await client.query("SELECT count(*) FROM pg_tables WHERE tablename = 'written_before_the_loss'", logger: logger)
                .decode(Int64.self) { tables = count }
            #expect(tables == 0)
        }
    }

    @Test("a statement in flight when the session ends fails with the server's error, and the transaction's end does not wait")
    func sessionEndedDuringStatement() async throws {
        try await TestDatabase.withFresh { _, client in
            let logger = logger
            try await finishing(within: .seconds(30)) {
                await #expect(throws: (any Error).self) {
                    try await client.withCatalogTransaction(logger: logger) { connection in
                        var backend: Int32 = 0
                        for try await pid in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) { backend = pid }
                        let killer = Task {
                            try await Task.sleep(for: .milliseconds(300))
                            _ = try await client.query("SELECT pg_terminate_backend(\(backend))", logger: logger).collect()
                        }
                        defer { killer.cancel() }
                        try await connection.query("SELECT pg_sleep(20)", logger: logger)
                    }
                }
            }
        }
    }
}
