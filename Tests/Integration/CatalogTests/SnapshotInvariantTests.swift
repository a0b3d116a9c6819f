import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// Random histories of a drive (paths appearing, changing, vanishing and coming back, runs that could not see
/// everything) recorded as snapshots, with random `forget`s in between. After every run the newest snapshot is
/// what the drive held (or, for an incomplete run, what it held plus what the run could not see); after every
/// forget each kept snapshot holds exactly what it held before, and exactly the versions only forgotten snapshots
/// held are released.
@Suite("snapshots and forget on a real PostgreSQL: the invariants over random histories")
struct SnapshotInvariantTests {
    let logger = TestEnvironment.logger

    @Test("random runs and forgets: the newest snapshot is the drive, kept snapshots never change, releases are exact")
    func randomHistories() async throws {
        let seed = UInt64(Date().timeIntervalSince1970)
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            let catalog = SnapshotCatalog(client: client, logger: logger)
            var random = SplitMix(seed: seed)
            for history in 0..<6 {
                let label = "drive-\(history)"
                let sourceID = try await scalar(client, "INSERT INTO sources (label) VALUES ('\(label)') RETURNING id", as: Int64.self)
                let paths = (0..<8).map { "dir\($0 % 3)/file-\($0).txt" }
                var present: [String: Bool] = [:]
                var lastRunSaw: [String: Int64] = [:]
                for _ in 0..<Int.random(in: 3...10, using: &random) {
                    // The drive changes: files appear, change, vanish, come back.
                    for path in paths {
                        switch Int.random(in: 0..<6, using: &random) {
                        case 0: present[path] = false
                        case 1, 2: present[path] = true; try await newVersion(client, sourceID: sourceID, path: path)
                        default: if present[path] == nil { present[path] = Bool.random(using: &random) }
                        }
                    }
                    // Some runs cannot see part of the drive (a directory that will not open).
                    let unseen = Int.random(in: 0..<4, using: &random) == 0 ? "dir\(Int.random(in: 0..<3, using: &random))" : nil
                    let seen = paths.filter { present[$0] == true && !(unseen.map { $0 + "/" }.map($0.hasPrefix) ?? false) }
                    for path in seen where try await latest(client, sourceID: sourceID, path: path) == nil {
                        try await newVersion(client, sourceID: sourceID, path: path)
                    }
                    let snapshotID = try await catalog.begin(sourceID: sourceID).id
                    try await catalog.finish(snapshotID: snapshotID, sourceID: sourceID, seenPaths: seen, unreadPaths: unseen.map { [$0] } ?? [], bytesUploaded: 0)

                    var expected: [String: Int64] = [:]
                    for path in seen { expected[path] = try await latest(client, sourceID: sourceID, path: path) }
                    if let unseen {
                        for (path, id) in lastRunSaw where path.hasPrefix(unseen + "/") { expected[path] = id }
                    }
                    let newest = try #require(try await catalog.list(sourceID: sourceID).last).number
                    let tree = try await members(client, sourceID: sourceID, number: newest)
                    #expect(tree == expected, "seed \(seed), \(label), snapshot \(newest): the snapshot is not what the drive held")
                    lastRunSaw = tree

                    if Int.random(in: 0..<3, using: &random) == 0 {
                        try await forgetSome(client, catalog: catalog, sourceID: sourceID, random: &random, seed: seed)
                    }
                }
            }
        }
    }

    /// Forgets a random set of snapshots (never the newest) and checks the invariants.
    func forgetSome(_ client: PostgresClient, catalog: SnapshotCatalog, sourceID: Int64, random: inout SplitMix, seed: UInt64) async throws {
        let numbers = try await catalog.list(sourceID: sourceID).map(\.number)
        guard numbers.count > 1 else { return }
        let forgotten = numbers.dropLast().filter { _ in Bool.random(using: &random) }
        var before: [Int: [String: Int64]] = [:]
        for number in numbers { before[number] = try await members(client, sourceID: sourceID, number: number) }
        let kept = numbers.filter { !forgotten.contains($0) }
        let heldByKept = Set(kept.flatMap { before[$0]!.values })
        let pending = Set(try await ids(client, "SELECT file_id FROM objectstoragedeletelog WHERE processed_at IS NULL"))
        let expected = Set(forgotten.flatMap { before[$0]!.values }).subtracting(heldByKept).subtracting(pending)

        let dry = try await catalog.forget(sourceID: sourceID, numbers: forgotten, dryRun: true)
        #expect(Set(dry.map(\.fileID)) == expected, "seed \(seed): the dry run names other versions")
        #expect(try await catalog.list(sourceID: sourceID).map(\.number) == numbers, "seed \(seed): a dry run forgot something")

        let released = try await catalog.forget(sourceID: sourceID, numbers: forgotten, dryRun: false)
        #expect(Set(released.map(\.fileID)) == expected, "seed \(seed): released \(released.map(\.fileID)), expected \(expected.sorted())")
        #expect(try await catalog.list(sourceID: sourceID).map(\.number) == kept)
        for number in kept {
            #expect(try await members(client, sourceID: sourceID, number: number) == before[number], "seed \(seed): kept snapshot \(number) changed")
        }
        let nowPending = Set(try await ids(client, "SELECT file_id FROM objectstoragedeletelog WHERE processed_at IS NULL"))
        #expect(nowPending == pending.union(expected))
        #expect(heldByKept.isDisjoint(with: nowPending.subtracting(pending)), "seed \(seed): a version a kept snapshot holds was released")
    }

    // MARK: the catalog, by hand

    func newVersion(_ client: PostgresClient, sourceID: Int64, path: String) async throws {
        _ = try await client.query("""
            INSERT INTO objectstoragefiles (source_id, name, path, version, kind, size_bytes, hash, state)
            SELECT \(sourceID), \(path), \(path), coalesce(max(version), 0) + 1, 'regular', 1,
                   encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex'), 'staged'
            FROM objectstoragefiles WHERE source_id = \(sourceID) AND path = \(path)
            """, logger: logger).collect()
    }

    func latest(_ client: PostgresClient, sourceID: Int64, path: String) async throws -> Int64? {
        for try await id in try await client.query(
            "SELECT id FROM objectstoragefiles WHERE source_id = \(sourceID) AND path = \(path) AND deleted_at IS NULL ORDER BY version DESC LIMIT 1",
            logger: logger).decode(Int64.self) { return id }
        return nil
    }

    func members(_ client: PostgresClient, sourceID: Int64, number: Int) async throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for try await (path, id) in try await client.query("SELECT path, file_id FROM snapshot_files(\(sourceID), \(number)::int)", logger: logger)
            .decode((String, Int64).self) { result[path] = id }
        return result
    }

    func ids(_ client: PostgresClient, _ sql: String) async throws -> [Int64] {
        var result: [Int64] = []
        for try await id in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) { result.append(id) }
        return result
    }

    func scalar<T: PostgresDecodable & Sendable>(_ client: PostgresClient, _ sql: String, as type: T.Type) async throws -> T {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(T.self) { return value }
        throw CatalogError(.migrationFailed, "no row for \(sql)")
    }
}
