// Claim-and-complete throughput of the work queue: N workers (tasks with their own worker id, sharing one
// connection pool as separate processes would share the server) claim batches of empty jobs with the real
// `WorkQueue.claim` and complete them with the real fenced `ArchiveCatalog.recordArchived`, until the queue is
// empty. Prints jobs per second for each worker count.
//
//   queue-bench DATABASE_URL JOBS BATCH WORKERS...
import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO

let arguments = CommandLine.arguments
guard arguments.count >= 5, let jobs = Int(arguments[2]), let batch = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: queue-bench DATABASE_URL JOBS BATCH WORKERS...\n".utf8))
    exit(2)
}
let workerCounts = arguments.dropFirst(4).compactMap { Int($0) }
let logger: Logger = {
    var logger = Logger(label: "queue-bench")
    logger.logLevel = .error
    return logger
}()
let url = try DatabaseURL(parsing: arguments[1])

try await CatalogDatabase.withClient(url, logger: logger) { client in
    _ = try await Migrator(logger: logger).migrate(client)
    for workers in workerCounts {
        // A fresh queue of empty jobs.
        // DELETE, not TRUNCATE: the delete log (empty here) refuses TRUNCATE by design.
        for table in ["pending_object_deletes", "objectstoragefiles", "bundles", "sources"] {
            _ = try await client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(table)"), logger: logger)
        }
        _ = try await client.query("INSERT INTO sources (id, label) VALUES (1, 'bench')", logger: logger)
        _ = try await client.query("""
            INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state)
            SELECT 1, 'f' || n, 'f' || n, 'regular', 0, encode(sha256(n::text::bytea), 'hex'), 'staged'
            FROM generate_series(1, \(jobs)) AS n
            """, logger: logger)
        _ = try await client.query("VACUUM ANALYZE objectstoragefiles", logger: logger)
        if workers == 0 { continue }  // only fill the queue (for the pgbench anchor)

        let started = ContinuousClock.now
        let completed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    let workerID = UUID()
                    let queue = WorkQueue(client: client, logger: logger)
                    let catalog = ArchiveCatalog(client: client, logger: logger)
                    var done = 0
                    while true {
                        let claimed = try await queue.claim(.archive, workerID: workerID, limit: batch, lease: .seconds(30))
                        if claimed.isEmpty { return done }
                        let items = try await catalog.load(claimed)
                        let placements = items.map {
                            ArchivedPlacement(item: $0, archiveKey: "bench/\($0.job.fileID)", bundleOffset: nil, storedSize: 0, storedHash: $0.contentHash)
                        }
                        done += try await catalog.recordArchived(placements, bundle: nil, workerID: workerID).count
                    }
                }
            }
            var total = 0
            for try await count in group { total += count }
            return total
        }
        let seconds = (ContinuousClock.now - started).seconds
        let rate = Double(completed) / seconds
        print(String(format: "ours  workers=%-3d batch=%-4d jobs=%d  %.2f s  %.0f jobs/s", workers, batch, completed, seconds, rate))
        guard completed == jobs else {
            print("error: \(completed) of \(jobs) jobs completed")
            exit(1)
        }
    }
}
