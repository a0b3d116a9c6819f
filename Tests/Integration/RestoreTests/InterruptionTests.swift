import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// Ctrl-C (SIGINT) and SIGTERM on the commands that read the archive, sent to the real programs while they work:
/// each must stop within seconds with exit 130 and "run the same command again", report nothing that did not
/// happen (no file "failed" because it was cut off, no verification or audit verdict recorded), leave the catalog
/// as it was, and the same command must then finish.
@Suite("interrupting restore, verify, audit and rebuild-catalog", .serialized, .onOwnThreads)
struct InterruptionTests {
    /// Waits for the child to exit, at most `limit`; a child still running then is killed and reported.
    static func result(of child: Subprocess.Running, within limit: Duration) async throws -> Subprocess.Result {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline, child.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        if child.isRunning {
            Issue.record("still running \(limit) after the signal: \(child.outputSoFar().suffix(2000))")
            child.signal(SIGKILL)
        }
        return try await child.wait()
    }

    static func waitUntil(_ what: String, limit: Duration = .seconds(120), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }

    static func expectInterrupted(_ result: Subprocess.Result) {
        #expect(result.status == 130, "\(result.output)")
        #expect(result.output.contains("interrupted"), "\(result.output)")
        #expect(result.output.contains("run the same command again"), "\(result.output)")
        #expect(!result.output.contains("CancellationError"), "a cut-off file reported as failed: \(result.output)")
        #expect(!result.output.contains("\"outcome\":\"failed\""), "\(result.output)")
    }

    /// A database for `rebuild-catalog`, its environment, and a scalar query on it.
    struct RebuildTarget {
        let database: TestDatabase
        let environment: [String: String]

        init(_ harness: PipelineHarness) async throws {
            database = try await TestDatabase.create()
            var environment = harness.environment
            environment["DATABASE_URL"] = try TestEnvironment.required("TEST_DATABASE_URL")
                .replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?")
            self.environment = environment
        }

        func count(_ sql: String) async throws -> Int64 {
            try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
                var value: Int64 = -1
                for try await count in try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).decode(Int64.self) {
                    value = count
                }
                return value
            }
        }

        /// The sessions of the program `child` (its pool names them `personal-backup <pid> …`), as (pid, state, wait event).
        func sessions(of child: Subprocess.Running) async throws -> [(Int32, String, String)] {
            try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
                var rows: [(Int32, String, String)] = []
                for try await row in try await client.query("""
                    SELECT pid, coalesce(state, ''), coalesce(wait_event_type, '') FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name LIKE \("personal-backup \(child.processID) %")
                    """, logger: TestEnvironment.logger).decode((Int32, String, String).self) {
                    rows.append(row)
                }
                return rows
            }
        }

        var isEmpty: Bool {
            get async throws { try await count("SELECT (SELECT count(*) FROM sources) + (SELECT count(*) FROM objectstoragefiles) + (SELECT count(*) FROM bundles)") == 0 }
        }
    }

    /// Holds `LOCK TABLE sources IN SHARE MODE` in a transaction of its own until released: the rebuild's import
    /// (an INSERT into `sources`) waits on it, as an active statement.
    final class SourcesLock: Sendable {
        let released = LockedBox(false)
        let taken = LockedBox(false)
        let task: Task<Void, any Error>

        init(_ url: DatabaseURL) {
            let (released, taken) = (released, taken)
            task = Task {
                try await CatalogDatabase.withClient(url, logger: TestEnvironment.logger) { client in
                    try await client.withCatalogTransaction(logger: TestEnvironment.logger) { connection in
                        try await connection.query("LOCK TABLE sources IN SHARE MODE", logger: TestEnvironment.logger)
                        taken.value = true
                        while !released.value { try await Task.sleep(for: .milliseconds(20)) }
                    }
                }
            }
        }

        func release() async throws {
            released.value = true
            try await task.value
        }
    }

    /// An archived tree (file://), a new migrated database for the rebuild, and `sources` locked in it.
    static func withLockedRebuildTarget(_ body: (PipelineHarness, RebuildTarget, SourcesLock) async throws -> Void) async throws {
        try await PipelineHarness.with(.file) { harness in
            _ = try RestoreTests.makeTree(harness)
            #expect(try await harness.upload(label: "DVD 12").status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let target = try await RebuildTarget(harness)
            let migrated = try await Program.run("uploader", ["migrate"], environment: target.environment)
            #expect(migrated.status == 0, "\(migrated.output)")
            let lock = SourcesLock(target.database.url)
            try await Self.waitUntil("the test holds the lock") { lock.taken.value }
            try await body(harness, target, lock)
            try? await target.database.drop()
        }
    }

    @Test("rebuild-catalog: Ctrl-C while its import statement waits on a lock ends it at once (the server is asked to cancel the statement); the database is left empty and the same command then finishes")
    func rebuildStatementCancelled() async throws {
        try await Self.withLockedRebuildTarget { harness, target, lock in
            let child = try Program.start("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--json"], environment: target.environment)
            try await Self.waitUntil("the rebuild's import waits on the lock") { try await target.sessions(of: child).contains { $0.1 == "active" && $0.2 == "Lock" } }
            child.signal(SIGINT)
            // The lock is still held: only the server cancelling the statement lets the rebuild stop now.
            let interrupted = try await Self.result(of: child, within: .seconds(20))
            #expect(!lock.released.value)
            Self.expectInterrupted(interrupted)
            // Cancelled on the server, not only abandoned by the client: no statement of the rebuild waits on there.
            try await Self.waitUntil("the server has no statement of the rebuild left", limit: .seconds(10)) { try await target.sessions(of: child).isEmpty }
            try await lock.release()
            #expect(try await target.isEmpty, "a rebuild that was interrupted leaves nothing behind")

            let again = try await Program.run("uploader", ["rebuild-catalog", "--from", harness.archiveURL, "--json"], environment: target.environment)
            #expect(again.status == 0, "\(again.output)")
            #expect(try await target.count("SELECT count(*) FROM objectstoragefiles") == harness.scalar("SELECT count(*) FROM objectstoragefiles", as: Int64.self))
        }
    }

    @Test("rebuild-catalog: SIGTERM between statements of its transaction (while it downloads the export, at --bwlimit 4k) ends it with 130, not a hang; then it finishes")
    func rebuildBetweenStatements() async throws {
        try await PipelineHarness.with(.s3) { harness in
            // Enough rows that the export (random hashes do not compress) takes seconds at 4 KiB/s.
            for index in 0..<400 { try harness.write("letters/\(index).txt", PipelineHarness.bytes(count: 64, seed: UInt64(index))) }
            #expect(try await harness.upload(label: "Letters").status == 0)
            #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
            let target = try await RebuildTarget(harness)
            #expect(try await Program.run("uploader", ["migrate"], environment: target.environment).status == 0)
            let child = try Program.start("uploader", ["rebuild-catalog", "--json", "--bwlimit", "4k"], environment: target.environment)
            try await Self.waitUntil("the rebuild's transaction is open") { try await target.sessions(of: child).contains { $0.1 == "idle in transaction" } }
            try await Task.sleep(for: .milliseconds(300))
            child.signal(SIGTERM)
            Self.expectInterrupted(try await Self.result(of: child, within: .seconds(20)))
            #expect(try await target.isEmpty)
            let again = try await Program.run("uploader", ["rebuild-catalog", "--json"], environment: target.environment)
            #expect(again.status == 0, "\(again.output)")
            #expect(try await target.count("SELECT count(*) FROM objectstoragefiles") == 400)
            try? await target.database.drop()
        }
    }

    @Test("a second Ctrl-C stops at once when the first cannot finish (the database stopped answering), with 130; the database, answering again, is left empty")
    func secondSignalStopsAtOnce() async throws {
        try await Self.withLockedRebuildTarget { harness, target, lock in
            let child = try Program.start("uploader", ["rebuild-catalog", "--from", harness.archiveURL], environment: target.environment)
            var backend: Int32 = 0
            try await Self.waitUntil("the rebuild's import waits on the lock") {
                backend = try await target.sessions(of: child).first { $0.1 == "active" && $0.2 == "Lock" }?.0 ?? 0
                return backend != 0
            }
            // The rebuild's server process stops: the first signal's cancel request and ROLLBACK get no answer.
            try #require(kill(backend, SIGSTOP) == 0, "the test stops a server process (it runs as root, as scripts/test does)")
            defer { kill(backend, SIGCONT) }
            child.signal(SIGINT)
            try await Task.sleep(for: .seconds(2))
            #expect(child.isRunning, "the first signal waits for the database: \(child.outputSoFar())")
            child.signal(SIGINT)
            let stopped = try await Self.result(of: child, within: .seconds(10))
            kill(backend, SIGCONT)  // before the lock is released and the sessions are counted
            #expect(stopped.status == 130, "\(stopped.output)")
            #expect(stopped.output.contains("interrupted again: stopped at once"), "\(stopped.output)")
            try await lock.release()
            try await Self.waitUntil("the server ended the stopped rebuild's session") { try await target.sessions(of: child).isEmpty }
            #expect(try await target.isEmpty)
        }
    }

    /// A tree with one large file (stored alone) that takes seconds to read at 256 KiB/s.
    static func slowTree(_ harness: PipelineHarness) async throws -> [String: [UInt8]] {
        var files = try RestoreTests.makeTree(harness)
        files["big/long film.bin"] = PipelineHarness.bytes(count: 6 << 20, seed: 41)
        try harness.write("big/long film.bin", files["big/long film.bin"]!)
        // Warm: the objects are readable at once, so verify and audit read every byte back.
        #expect(try await harness.upload(label: "DVD 12", extra: ["--tier", "warm"]).status == 0)
        #expect(try await harness.archiveOnce(RestoreTests.archiveOptions).status == 0)
        return files
    }

    @Test("restore: SIGTERM mid-download exits 130 without calling the cut-off files failed; the same command then restores everything")
    func restoreInterrupted() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files = try await Self.slowTree(harness)
            let directory = restoreDirectory(harness)
            let arguments = ["restore", "--source", "DVD 12", "--to", directory, "--json"]
            let child = try Program.start("uploader", arguments + ["--bwlimit", "256k"], environment: harness.environment)
            try await Self.waitUntil("a partial download is under way") {
                let partials = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".partial") }
                return partials.contains { (try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0)[.size] as? Int) ?? 0 > 0 }
            }
            child.signal(SIGTERM)
            let interrupted = try await Self.result(of: child, within: .seconds(20))
            Self.expectInterrupted(interrupted)
            #expect(interrupted.output.contains("partial downloads resume"), "\(interrupted.output)")
            let again = try await Program.run("uploader", arguments, environment: harness.environment)
            #expect(again.status == 0, "\(again.output)")
            try RestoreTests.expectRestored(harness, files, in: directory, label: "DVD 12")
        }
    }

    @Test("verify: SIGTERM while objects are read exits 130 and records no verdict for what it did not finish; audit: the same, and no audit is recorded")
    func verifyAndAuditInterrupted() async throws {
        try await PipelineHarness.with(.s3) { harness in
            _ = try await Self.slowTree(harness)
            for command in ["verify", "audit"] {
                let child = try Program.start("uploader", [command, "--json", "--bwlimit", "256k"], environment: harness.environment)
                // Reading the large object takes 24 s at this rate; the signal comes while it is read.
                try await Task.sleep(for: .seconds(3))
                child.signal(SIGTERM)
                let interrupted = try await Self.result(of: child, within: .seconds(20))
                #expect(interrupted.status == 130, "\(command): \(interrupted.output)")
                #expect(interrupted.output.contains("interrupted"), "\(command): \(interrupted.output)")
                #expect(!interrupted.output.contains("CancellationError"), "\(command): \(interrupted.output)")
                #expect(!interrupted.output.contains("\"event\":\"summary\""), "\(command): \(interrupted.output)")
            }
            #expect(try await harness.scalar("SELECT count(*) FROM archive_verifications WHERE outcome <> 'ok'", as: Int64.self) == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM source_audits", as: Int64.self) == 0)
            // Run to the end, both say the archive is whole.
            for command in ["verify", "audit"] {
                let finished = try await Program.run("uploader", [command, "--json"], environment: harness.environment)
                #expect(finished.status == 0, "\(command): \(finished.output)")
            }
            #expect(try await harness.scalar("SELECT count(*) FROM source_audits WHERE safe", as: Int64.self) == 1)
        }
    }
}
