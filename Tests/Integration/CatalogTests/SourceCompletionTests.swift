import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// `SourceCompletion.read` (the "safe to destroy?" verdict of a source) counts in SQL and joins the holders for the
/// duplicates alone. Over random catalogs — every state, duplicates of live, failed, deleted and duplicate rows
/// (chains), deleted files — it must say exactly what judging every row by `EffectiveState` one by one says.
@Suite("a source's completion on a real PostgreSQL: the counting read against the row-by-row definition")
struct SourceCompletionTests {
    let logger = TestEnvironment.logger

    @Test("random catalogs: files, done, in flight and the files not stored agree with EffectiveState row by row", arguments: [UInt64.random(in: 0...UInt64.max)])
    func agreesWithRowByRow(seed: UInt64) async throws {
        var random = SplitMix(seed: seed)
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let labels = ["A", "B", "C"]
            var sourceIDs: [Int64] = []
            for label in labels {
                sourceIDs.append(try await value(client, "INSERT INTO sources (label) VALUES ('\(label)') RETURNING id", as: Int64.self))
            }
            var ids: [Int64] = []
            for n in 0..<Int.random(in: 40...120, using: &random) {
                let source = sourceIDs.randomElement(using: &random)!
                let hash = String(format: "%064x", n)
                let columns: String
                switch Int.random(in: 0..<9, using: &random) {
                case 0: columns = "'staged', '\(hash)', NULL, NULL, NULL, NULL, NULL"
                case 1: columns = "'transcoded', '\(hash)', NULL, NULL, NULL, NULL, NULL"
                case 2: columns = "'archiving', '\(hash)', NULL, NULL, gen_random_uuid(), now() + interval '1 minute', NULL"
                case 3, 4: columns = "'archived', '\(hash)', 'archive/\(n)', now(), NULL, NULL, NULL"
                case 5: columns = "'failed', '\(hash)', NULL, NULL, NULL, NULL, 'test: failed \(n)'"
                case 6: columns = "'unreadable', NULL, NULL, NULL, NULL, NULL, 'test: unreadable \(n)'"
                default:
                    guard let holder = ids.randomElement(using: &random) else { continue }
                    columns = "'duplicate', '\(hash)', NULL, NULL, NULL, NULL, NULL"
                    ids.append(try await insert(client, source: source, n: n, columns: columns, duplicateOf: holder))
                    continue
                }
                ids.append(try await insert(client, source: source, n: n, columns: columns, duplicateOf: nil))
            }
            // Some files deleted (holders among them), so duplicates of deleted rows and deleted duplicates occur.
            for id in ids where Int.random(in: 0..<8, using: &random) == 0 {
                _ = try await client.query("UPDATE objectstoragefiles SET deleted_at = now() WHERE id = \(id)", logger: logger).collect()
            }
            for label in labels {
                let counted = try await SourceCompletion.read(label: label, client: client, logger: logger)
                let expected = try await rowByRow(client, label: label)
                #expect(counted.files == expected.files && counted.done == expected.done && counted.inFlight == expected.inFlight,
                        "seed \(seed), source \(label): \(counted.files)/\(counted.done)/\(counted.inFlight) against \(expected.files)/\(expected.done)/\(expected.inFlight)")
                #expect(counted.notStored.map { "\($0.fileID) \($0.path) \($0.state) \($0.error ?? "-")" } == expected.notStored, "seed \(seed), source \(label)")
            }
            #expect(try await SourceCompletion.read(label: "no such source", client: client, logger: logger).uploadFinished == nil)
        }
    }

    func insert(_ client: PostgresClient, source: Int64, n: Int, columns: String, duplicateOf: Int64?) async throws -> Int64 {
        try await value(client, """
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, state, hash, archive_key, archived_at, lease_owner, lease_expires_at, error, duplicate_of, lease_from_state)
            VALUES (\(source), 'f\(n)', 'dir/f\(n)', 'regular', \(n), \(columns), \(duplicateOf.map(String.init) ?? "NULL"), 'staged') RETURNING id
            """, as: Int64.self)
    }

    /// The definition: every live row of the source judged by `EffectiveState`, one by one, in Swift.
    func rowByRow(_ client: PostgresClient, label: String) async throws -> (files: Int, done: Int, inFlight: Int, notStored: [String]) {
        var completion: (files: Int, done: Int, inFlight: Int, notStored: [(path: String, line: String)]) = (0, 0, 0, [])
        for try await (id, path, state, error) in try await client.query("""
            SELECT f.id, f.path, \(unescaped: EffectiveState.sql), coalesce(f.error, h.error)
            FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id \(unescaped: EffectiveState.holderJoin)
            WHERE s.label = \(label) AND f.deleted_at IS NULL
            """, logger: logger).decode((Int64, String, String, String?).self) {
            completion.files += 1
            switch FileState(rawValue: state) {
            case .archived?, .duplicate?: completion.done += 1
            case .failed?, .unreadable?, nil:
                completion.notStored.append((path, "\(id) \(path) \(state) \(error ?? "-")"))
            default: completion.inFlight += 1
            }
        }
        return (completion.files, completion.done, completion.inFlight, completion.notStored.sorted { $0.path < $1.path }.map(\.line))
    }

    func value<T: PostgresDecodable & Sendable>(_ client: PostgresClient, _ sql: String, as type: T.Type) async throws -> T {
        do {
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(T.self) { return value }
        } catch {
            throw CatalogError(.queryFailed, "\(sql): \(String(reflecting: error))")
        }
        throw CatalogError(.queryFailed, "no row: \(sql)")
    }
}
