import Catalog
import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

/// `sources.catalog_epoch` (migrations 14 and 28): the uploader trusts its local index only while a source's epoch
/// is what the index recorded, so every committed change that could alter a look-up must move it, and a change
/// rolled back must not be counted as made. Raised once per transaction and source, so a statement over many rows
/// writes the source's row once.
@Suite("Catalog: the source epoch the local index trusts")
struct CatalogEpochTests {
    let logger = TestEnvironment.logger

    /// Two sources of `rowsPerSource` archived rows each; returns their ids.
    private func seed(_ client: PostgresClient, rowsPerSource: Int) async throws -> [Int64] {
        var ids: [Int64] = []
        for label in ["A", "B"] {
            for try await id in try await client.query("INSERT INTO sources (label) VALUES (\(label)) RETURNING id", logger: logger).decode(Int64.self) {
                ids.append(id)
            }
        }
        for source in ids {
            _ = try await client.query("""
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, storage, storage_key, archive_key, archived_at)
                SELECT \(source), 'f' || g, 'f' || g, 'regular', 100, repeat('ab', 32), 'archived', 'archive', 'k/' || \(source) || '/' || g, 'k/' || \(source) || '/' || g, now()
                FROM generate_series(1, \(rowsPerSource)) g
                """, logger: logger).collect()
        }
        return ids
    }

    private func epochs(_ client: PostgresClient) async throws -> [Int64: Int64] {
        var result: [Int64: Int64] = [:]
        for try await (id, epoch) in try await client.query("SELECT id, catalog_epoch FROM sources", logger: logger).decode((Int64, Int64).self) {
            result[id] = epoch
        }
        return result
    }

    @Test("a statement over 3,000 rows and another over 2,000 in one transaction write the source's row once and raise its epoch by one")
    func oncePerTransaction() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let ids = try await seed(client, rowsPerSource: 6_000)
            let before = try await epochs(client)
            let sourceUpdates = try await client.withConnection { connection in
                _ = try await connection.query("BEGIN", logger: logger).collect()
                _ = try await connection.query("UPDATE objectstoragefiles SET state = 'failed' WHERE source_id = \(ids[0]) AND name <= 'f3'", logger: logger).collect()
                _ = try await connection.query("UPDATE objectstoragefiles SET deleted_at = now() WHERE source_id = \(ids[0]) AND name > 'f3' AND name <= 'f5'", logger: logger).collect()
                var updates: Int64 = -1
                // This transaction's own writes to `sources`: one, not one per row.
                for try await value in try await connection.query(
                    "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'sources'", logger: logger).decode(Int64.self) { updates = value }
                _ = try await connection.query("COMMIT", logger: logger).collect()
                return updates
            }
            #expect(sourceUpdates == 1)
            let after = try await epochs(client)
            #expect(after[ids[0]] == before[ids[0]]! + 1)
            #expect(after[ids[1]] == before[ids[1]])
        }
    }

    @Test("random transactions with savepoints and rollbacks: the epoch moves by exactly one for each committed transaction that changed a source's looked-up rows, and never otherwise")
    func randomizedTransactions() async throws {
        let historySeed = ProcessInfo.processInfo.environment["CATALOG_EPOCH_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0 ... .max)
        print("CatalogEpochTests seed: \(historySeed) (CATALOG_EPOCH_TEST_SEED replays it)")
        var random = SplitMix(seed: historySeed)
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let ids = try await seed(client, rowsPerSource: 40)
            var fileIDs: [Int64: [Int64]] = [:]
            for try await (id, source) in try await client.query("SELECT id, source_id FROM objectstoragefiles", logger: logger).decode((Int64, Int64).self) {
                fileIDs[source, default: []].append(id)
            }
            for round in 0 ..< 120 {
                let before = try await epochs(client)
                let commit = random.next() % 5 != 0
                // The round's plan is drawn before the transaction runs, so the closure below only reads it.
                let steps: [(source: Int64, file: Int64, undone: Bool, operation: UInt64)] = (0 ..< Int(1 + random.next() % 4)).map { _ in
                    let source = ids[Int(random.next() % 2)]
                    let files = fileIDs[source]!
                    return (source, files[Int(random.next() % UInt64(files.count))], random.next() % 4 == 0, random.next() % 6)
                }
                let raised = try await client.withConnection { connection -> Set<Int64> in
                    func heldContent(_ file: Int64) async throws -> Bool {
                        for try await held in try await connection.query(
                            "SELECT state NOT IN ('failed', 'unreadable') FROM objectstoragefiles WHERE id = \(file)", logger: logger).decode(Bool.self) { return held }
                        return false
                    }
                    var raised = Set<Int64>()
                    _ = try await connection.query("BEGIN", logger: logger).collect()
                    for (number, step) in steps.enumerated() {
                        let unique = "\(round)-\(number)"
                        if step.undone { _ = try await connection.query("SAVEPOINT s", logger: logger).collect() }
                        let raises: Bool
                        switch step.operation {
                        case 0:  // held content, now failed (raises only if it was not failed already)
                            raises = try await heldContent(step.file)
                            _ = try await connection.query("UPDATE objectstoragefiles SET state = 'failed' WHERE id = \(step.file)", logger: logger).collect()
                        case 1:  // a path change (a move)
                            _ = try await connection.query("UPDATE objectstoragefiles SET path = \("moved-\(unique)") WHERE id = \(step.file)", logger: logger).collect()
                            raises = true
                        case 2:  // a delete request
                            _ = try await connection.query("INSERT INTO objectstoragedeletelog (file_id) VALUES (\(step.file))", logger: logger).collect()
                            raises = true
                        case 3:  // a new row: seen by the row count, not the epoch
                            _ = try await connection.query("""
                                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                                VALUES (\(step.source), 'n', \("new-\(unique)"), 'regular', 1, repeat('cd', 32), 'staging', \("s/\(unique)"))
                                """, logger: logger).collect()
                            raises = false
                        case 4:  // details only: not a look-up's business
                            _ = try await connection.query("UPDATE objectstoragefiles SET details = details || '{\"touched\": true}' WHERE id = \(step.file)", logger: logger).collect()
                            raises = false
                        default:  // a size change (raises only while the row holds content)
                            raises = try await heldContent(step.file)
                            _ = try await connection.query("UPDATE objectstoragefiles SET size_bytes = size_bytes + 1 WHERE id = \(step.file)", logger: logger).collect()
                        }
                        if step.undone {
                            _ = try await connection.query("ROLLBACK TO SAVEPOINT s", logger: logger).collect()
                        } else if raises {
                            raised.insert(step.source)
                        }
                    }
                    _ = try await connection.query(commit ? "COMMIT" : "ROLLBACK", logger: logger).collect()
                    return raised
                }
                let after = try await epochs(client)
                for source in ids {
                    let expected = before[source]! + (commit && raised.contains(source) ? 1 : 0)
                    #expect(after[source] == expected, "seed \(historySeed), round \(round), source \(source): epoch \(after[source]!), expected \(expected)")
                }
            }
        }
    }

    @Test("two transactions changing the same source: the second waits for the first and raises the epoch again")
    func concurrentTransactions() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let ids = try await seed(client, rowsPerSource: 10)
            let before = try await epochs(client)[ids[0]]!
            try await client.withConnection { first in
                _ = try await first.query("BEGIN", logger: logger).collect()
                _ = try await first.query("UPDATE objectstoragefiles SET state = 'failed' WHERE source_id = \(ids[0]) AND name = 'f1'", logger: logger).collect()
                let second = Task {
                    try await client.withConnection { connection in
                        _ = try await connection.query("BEGIN", logger: logger).collect()
                        _ = try await connection.query("UPDATE objectstoragefiles SET deleted_at = now() WHERE source_id = \(ids[0]) AND name = 'f2'", logger: logger).collect()
                        _ = try await connection.query("COMMIT", logger: logger).collect()
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                _ = try await first.query("COMMIT", logger: logger).collect()
                try await second.value
            }
            #expect(try await epochs(client)[ids[0]]! == before + 2)
        }
    }
}
