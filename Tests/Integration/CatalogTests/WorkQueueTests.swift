import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Synchronization
import Testing
import TestSupport

@Suite("The work queue: claims, leases and fencing against a real PostgreSQL")
struct WorkQueueTests {
    let logger = TestEnvironment.logger

    /// A migrated database with `count` staged rows of each given kind.
    func withRows(_ kinds: [FileKind: Int], _ body: (PostgresClient, WorkQueue) async throws -> Void) async throws {
        try await TestDatabase.withFresh { _, client in
            try await Migrator(logger: logger).migrate(client)
            _ = try await client.query("INSERT INTO sources (label) VALUES ('queue test')", logger: logger).collect()
            for (kind, count) in kinds {
                _ = try await client.query("""
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, max_attempts)
                    SELECT 1, 'f' || n, \(kind.rawValue) || '/' || n, \(kind.rawValue), n, lpad(to_hex(n), 64, '0'), 'staging', 'k' || n, 2
                    FROM generate_series(1, \(count)) AS n
                    """, logger: logger).collect()
            }
            try await body(client, WorkQueue(client: client, logger: logger))
        }
    }

    @Test("two workers claiming at once never get the same row, and together get them all")
    func racingClaims() async throws {
        try await withRows([.regular: 300]) { client, queue in
            let (first, second) = (UUID(), UUID())
            async let a = claimAll(queue, worker: first)
            async let b = claimAll(queue, worker: second)
            let (claimedByA, claimedByB) = try await (a, b)
            #expect(Set(claimedByA).isDisjoint(with: claimedByB))
            #expect(claimedByA.count + claimedByB.count == 300)
            #expect(!claimedByA.isEmpty && !claimedByB.isEmpty, "both workers got work: \(claimedByA.count) / \(claimedByB.count)")
            let states = try await client.query("SELECT count(*) FROM objectstoragefiles WHERE state = 'archiving' AND attempts = 1", logger: logger).decode(Int64.self)
            for try await count in states { #expect(count == 300) }
        }
    }

    private func claimAll(_ queue: WorkQueue, worker: UUID) async throws -> [Int64] {
        var ids: [Int64] = []
        while true {
            let batch = try await queue.claim(.archive, workerID: worker, limit: 7, lease: .seconds(30))
            if batch.isEmpty { return ids }
            ids += batch.map(\.fileID)
        }
    }

    @Test("the transcoder takes staged videos; the archiver everything else and transcoded videos")
    func stepsTakeTheirKinds() async throws {
        try await withRows([.video: 3, .regular: 2, .discImage: 1]) { client, queue in
            let transcodes = try await queue.claim(.transcode, workerID: UUID(), limit: 100, lease: .seconds(30))
            #expect(transcodes.map(\.kind) == [.video, .video, .video])
            #expect(transcodes.allSatisfy { $0.claimedFrom == .staged })
            let archives = try await queue.claim(.archive, workerID: UUID(), limit: 100, lease: .seconds(30))
            #expect(Set(archives.map(\.kind)) == [.regular, .discImage])
            _ = try await client.query("UPDATE objectstoragefiles SET state = 'transcoded', lease_owner = NULL, lease_expires_at = NULL, lease_from_state = NULL WHERE kind = 'video'", logger: logger).collect()
            let transcoded = try await queue.claim(.archive, workerID: UUID(), limit: 100, lease: .seconds(30))
            #expect(transcoded.count == 3)
            #expect(transcoded.allSatisfy { $0.claimedFrom == .transcoded })
        }
    }

    @Test("an expired lease is re-claimed with a new token; the old owner can no longer touch the row")
    func expiredLeaseIsFenced() async throws {
        try await withRows([.regular: 1]) { client, queue in
            let (stuck, rescuer) = (UUID(), UUID())
            let original = try #require(try await queue.claim(.archive, workerID: stuck, limit: 1, lease: .seconds(30)).first)
            #expect(try await queue.claim(.archive, workerID: rescuer, limit: 1, lease: .seconds(30)).isEmpty, "a live lease is not taken")
            // The stuck worker sends no heartbeat: move its lease's expiry into the past instead of waiting 30 s,
            // so the test does not depend on how busy the machine is.
            _ = try await client.query("UPDATE objectstoragefiles SET lease_expires_at = now() - interval '1 second'", logger: logger).collect()
            let rescued = try #require(try await queue.claim(.archive, workerID: rescuer, limit: 1, lease: .seconds(30)).first)
            #expect(rescued.fileID == original.fileID)
            #expect(rescued.leaseToken == original.leaseToken + 1)
            #expect(rescued.claimedFrom == .staged, "re-claimed into the step it was in")
            #expect(rescued.attempt == 2)

            #expect(try await queue.renew(original, workerID: stuck, lease: .seconds(30)) == false)
            #expect(try await queue.fail(original, workerID: stuck, error: "late", retryAfter: .zero) == false)
            #expect(try await queue.release(original, workerID: stuck) == false)
            #expect(try await queue.renew(rescued, workerID: rescuer, lease: .seconds(30)) == true)
            #expect(try await queue.release(rescued, workerID: rescuer) == true)
            for try await (state, attempts) in try await client.query("SELECT state, attempts FROM objectstoragefiles", logger: logger).decode((String, Int).self) {
                #expect(state == "staged")
                #expect(attempts == 1, "a released claim does not count as an attempt")
            }
        }
    }

    @Test("the heartbeat's renewal never waits for a row lock: a row another transaction holds is busy, not lost, and the holder can go on locking (no deadlock)")
    func renewalSkipsLockedRows() async throws {
        try await withRows([.regular: 3]) { client, queue in
            let worker = UUID()
            let claimed = try await queue.claim(.archive, workerID: worker, limit: 3, lease: .seconds(30))
            let ids = claimed.map(\.fileID)
            try await client.withTransaction(logger: logger) { connection in
                // Like a completion: it locks the rows in id order, and has the first when the heartbeat comes.
                _ = try await connection.query("SELECT id FROM objectstoragefiles WHERE id = \(ids[0]) FOR UPDATE", logger: logger).collect()
                // The heartbeat renews in another order. Were it to wait, it would hold the third row and wait
                // for the first; the completion then waits for the third: a deadlock.
                // A renewal that waits would wait until this transaction ends: give it 20 s, then end the transaction.
                let answer = Mutex<LeaseRenewal?>(nil)
                let renewal = Task {
                    let result = try await queue.renewAll(claimed.reversed(), workerID: worker, lease: .seconds(30))
                    answer.withLock { $0 = result }
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while answer.withLock({ $0 }) == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                let result = try #require(answer.withLock { $0 }, "the renewal waited for the locked row")
                try await renewal.value
                #expect(result.busy == [ids[0]])
                #expect(result.renewed == Set(ids.dropFirst()))
                #expect(result.lost(of: claimed).isEmpty)
                _ = try await connection.query("SELECT id FROM objectstoragefiles WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE", logger: logger).collect()
            }
            // A row taken by another worker is lost; the others are renewed.
            _ = try await client.query("UPDATE objectstoragefiles SET lease_owner = gen_random_uuid() WHERE id = \(ids[1])", logger: logger).collect()
            let after = try await queue.renewAll(claimed, workerID: worker, lease: .seconds(30))
            #expect(after.lost(of: claimed) == [ids[1]])
            #expect(after.renewed == [ids[0], ids[2]])
        }
    }

    @Test("failures back off, and after the last attempt the row is failed with its error")
    func failuresBackOffThenFail() async throws {
        try await withRows([.regular: 1]) { client, queue in
            let worker = UUID()
            let first = try #require(try await queue.claim(.archive, workerID: worker, limit: 1, lease: .seconds(30)).first)
            #expect(try await queue.fail(first, workerID: worker, error: "upload timed out; it's 'quoted'", retryAfter: .seconds(3600)))
            #expect(try await queue.claim(.archive, workerID: worker, limit: 1, lease: .seconds(30)).isEmpty, "backing off")
            for try await (error, wait) in try await client.query(
                "SELECT error, extract(epoch FROM run_after - now())::float8 FROM objectstoragefiles", logger: logger
            ).decode((String?, Double).self) {
                #expect(error == "upload timed out; it's 'quoted'")
                #expect(wait > 3500, "retry scheduled an hour ahead, got \(wait) s")
            }
            // An hour passes.
            _ = try await client.query("UPDATE objectstoragefiles SET run_after = now() - interval '1 second'", logger: logger).collect()
            let second = try #require(try await queue.claim(.archive, workerID: worker, limit: 1, lease: .seconds(30)).first)
            #expect(second.attempt == 2)
            #expect(try await queue.fail(second, workerID: worker, error: "still broken", retryAfter: .zero))
            for try await (state, error) in try await client.query("SELECT state, error FROM objectstoragefiles", logger: logger).decode((String, String?).self) {
                #expect(state == "failed")
                #expect(error == "still broken")
            }
            #expect(try await queue.claim(.archive, workerID: worker, limit: 1, lease: .seconds(30)).isEmpty)
        }
    }
}
