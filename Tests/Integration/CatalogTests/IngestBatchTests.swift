@testable import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

@Suite("Cataloguing uploaded files in batches, against a real PostgreSQL")
struct IngestBatchTests {
    let logger = TestEnvironment.logger

    func file(_ source: Int64, _ path: String, size: Int64 = 10) -> IngestedFile {
        IngestedFile(sourceID: source, path: path, rawPath: nil, name: String(path.split(separator: "/").last ?? ""),
                     sizeBytes: size, modifiedAt: Date(timeIntervalSince1970: 1_700_000_000.123456), kind: .regular)
    }

    func hash(_ n: Int) -> String { String(repeating: "0", count: 63) + String(n % 10) }

    @Test("a batch decides exactly as one file at a time would: repeats inside it see the earlier rows")
    func batchMatchesSequentialDecisions() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let source = try await catalog.openSource(label: "batch", metadata: [:], note: nil, origin: "/media")
            // Before the batch: a.txt is catalogued, and bad.bin was unreadable.
            _ = try await catalog.record(file(source, "a.txt"), hash: hash(1), stagingKey: "k-a", pendingID: nil)
            let unreadableID = try await catalog.recordUnreadable(file(source, "bad.bin"), error: "EIO")

            let outcomes = try await catalog.record([
                IngestRecord(file: file(source, "a.txt"), hash: hash(1), stagingKey: "k-a2", pendingID: nil),  // same content
                IngestRecord(file: file(source, "b.txt"), hash: hash(2), stagingKey: "k-b", pendingID: nil),   // new
                IngestRecord(file: file(source, "c.txt"), hash: hash(2), stagingKey: "k-c", pendingID: nil),   // same as b, same batch
                IngestRecord(file: file(source, "b.txt"), hash: hash(3), stagingKey: "k-b2", pendingID: nil),  // b changed: version 2
                IngestRecord(file: file(source, "bad.bin"), hash: hash(4), stagingKey: "k-bad", pendingID: nil), // readable now
                IngestRecord(file: file(source, "d.txt"), hash: hash(1), stagingKey: nil, pendingID: nil),     // known hash, not sent
            ])

            guard case .unchanged = outcomes[0] else { Issue.record("a.txt: \(outcomes[0])"); return }
            guard case .staged(let bID, 1) = outcomes[1] else { Issue.record("b.txt: \(outcomes[1])"); return }
            guard case .duplicate(_, 1, let of) = outcomes[2], of == bID else { Issue.record("c.txt: \(outcomes[2])"); return }
            guard case .staged(_, 2) = outcomes[3] else { Issue.record("b.txt v2: \(outcomes[3])"); return }
            guard case .staged(let badID, 1) = outcomes[4], badID == unreadableID else { Issue.record("bad.bin: \(outcomes[4])"); return }
            guard case .duplicate(_, 1, _) = outcomes[5] else { Issue.record("d.txt: \(outcomes[5])"); return }

            var rows: [String] = []
            let query = try await client.query("""
                SELECT path, version, state, coalesce(storage_key, '-'), modified_at FROM objectstoragefiles ORDER BY path COLLATE "C", version
                """, logger: logger)
            for try await (path, version, state, key, modified) in query.decode((String, Int, String, String, Date?).self) {
                rows.append("\(path) v\(version) \(state) \(key)")
                #expect(modified.map { abs($0.timeIntervalSince1970 - 1_700_000_000.123456) < 0.000_01 } == true, "\(path): \(String(describing: modified))")
            }
            #expect(rows == [
                "a.txt v1 staged k-a", "b.txt v1 staged k-b", "b.txt v2 staged k-b2", "bad.bin v1 staged k-bad",
                "c.txt v1 duplicate -", "d.txt v1 duplicate -",
            ])
        }
    }

    @Test("rounds keep a repeated hash or path after its first appearance")
    func roundsOrderRepeats() {
        let records = [("x", 1), ("y", 2), ("x", 3), ("z", 2), ("w", 4), ("x", 5)].map {
            IngestRecord(file: file(1, $0.0), hash: hash($0.1), stagingKey: "k", pendingID: nil)
        }
        #expect(IngestCatalog.rounds(records) == [[0, 1, 4], [2, 3], [5]])
    }

    @Test("two batches over the same paths and contents at once neither deadlock nor store anything twice")
    func concurrentBatches() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let source = try await catalog.openSource(label: "race", metadata: [:], note: nil, origin: "/media")
            func batch(_ reversed: Bool) -> [IngestRecord] {
                let records = (0..<40).map { IngestRecord(file: file(source, "f\($0)"), hash: hash($0), stagingKey: "k\($0)-\(reversed)", pendingID: nil) }
                return reversed ? records.reversed() : records
            }
            async let first = catalog.record(batch(false))
            async let second = catalog.record(batch(true))
            _ = try await (first, second)
            let counts = try await client.query("""
                SELECT count(*), count(DISTINCT path), count(*) FILTER (WHERE state = 'staged') FROM objectstoragefiles
                """, logger: logger).decode((Int64, Int64, Int64).self)
            for try await (rows, paths, staged) in counts {
                // Ten distinct hashes: each stored once; the other rows of equal content are duplicates or unchanged.
                #expect(rows == 40 && paths == 40 && staged == 10, "\(rows) rows, \(paths) paths, \(staged) staged")
            }
        }
    }
}
