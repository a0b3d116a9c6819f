@testable import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// The delete processor and dedupe exclude each other (`ContentLocks`): raced against each other on real
/// PostgreSQL connections, no live file may end up a duplicate of content that was released.
@Suite("dedupe against deletes, raced")
struct DedupeDeleteRaceTests {
    let logger = TestEnvironment.logger

    @Test("an uploader recording duplicates while the holders' deletes are processed: no live row points at released content")
    func raceDedupeAgainstDeletes() async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = IngestCatalog(client: client, logger: logger)
            let first = try await catalog.openSource(label: "first", metadata: [:], note: nil, origin: "test")
            let second = try await catalog.openSource(label: "second", metadata: [:], note: nil, origin: "test")
            let rounds = 300
            func file(_ source: Int64, _ index: Int) -> IngestedFile {
                IngestedFile(sourceID: source, path: "f\(index)", rawPath: nil, name: "f\(index)", sizeBytes: 10, modifiedAt: nil, kind: .regular)
            }
            func hash(_ index: Int) -> String { String(format: "%064x", index + 1) }
            for index in 0..<rounds {
                let outcome = try await catalog.record(file(first, index), hash: hash(index), stagingKey: "first/\(index)", pendingID: nil)
                guard case .staged(let holder, _) = outcome else { Issue.record("\(outcome)"); return }
                _ = try await client.query(
                    "INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(holder), now() - interval '1 day')", logger: logger)
            }
            // The uploaders saw every holder before the deletes ran (hash known: nothing sent) and record now,
            // three at a time, while three delete processors work through the same content.
            let (needed, processed) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for lane in 0..<3 {
                    group.addTask {
                        var needed = 0
                        for index in stride(from: lane, to: rounds, by: 3) {
                            let outcome = try await catalog.record(file(second, index), hash: hash(index), stagingKey: nil, pendingID: nil)
                            if outcome == .needsContent {
                                needed += 1
                                _ = try await catalog.record(file(second, index), hash: hash(index), stagingKey: "second/\(index)", pendingID: nil)
                            }
                        }
                        return (needed, 0)
                    }
                    group.addTask {
                        (0, try await DeleteRequests(client: client, logger: logger).processDue(grace: .seconds(0), limit: rounds).count)
                    }
                }
                return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
            #expect(processed == rounds)

            var broken: [String] = []
            for try await (id, path, holder) in try await client.query("""
                SELECT f.id, f.path, content_holder(f.id) FROM objectstoragefiles f
                LEFT JOIN objectstoragefiles h ON h.id = content_holder(f.id)
                WHERE f.deleted_at IS NULL AND (h.id IS NULL OR h.deleted_at IS NOT NULL)
                """, logger: logger).decode((Int64, String, Int64?).self) {
                broken.append("file \(id) (\(path)) resolves to \(holder.map { "deleted file \($0)" } ?? "nothing")")
            }
            #expect(broken.isEmpty, "\(broken.count) live rows lost their content: \(broken.prefix(5))")
            // Every second-disc file holds its content: stored anew, or handed over from the deleted holder.
            let live = try await client.query(
                "SELECT count(*) FROM objectstoragefiles WHERE source_id = \(second) AND deleted_at IS NULL AND state = 'staged'", logger: logger)
            for try await count in live.decode(Int.self) { #expect(count == rounds, "needsContent \(needed) times") }
        }
    }
}
