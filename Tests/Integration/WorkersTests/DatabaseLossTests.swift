import Catalog
import Foundation
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// The archiver while its database sessions are ended under it (`pg_terminate_backend`, what a server restart or a
/// failover does to every session) at random moments: each pass must end, with the lost-connection line or with its
/// work done, never wait forever; and a last pass on a quiet database archives everything, which `uploader verify`
/// reads back. Before statements went through `CatalogConnection`'s check, about one run in three hung: a statement
/// handed to a pooled connection whose session had just ended was never answered.
@Suite("archiver: database sessions ended under it", .onOwnThreads)
struct DatabaseLossTests {
    static let passes = 4
    static let passLimit: Duration = .seconds(120)

    @Test("sessions ended every 2 to 500 ms during four passes: every pass ends, and a last pass archives every file")
    func sessionsEndedAtRandom() async throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SplitMix(seed: seed)
        try await PipelineHarness.with(.file) { harness in
            for index in 0..<1_200 {
                try harness.write("docs/\(index % 12)/\(index).txt", PipelineHarness.bytes(count: 1_000 + index, seed: UInt64(index + 1)))
            }
            try harness.write("big/a.bin", PipelineHarness.bytes(count: 300_000, seed: 7))
            try harness.write("big/b.bin", PipelineHarness.bytes(count: 400_000, seed: 8))
            let upload = try await harness.upload(label: "Storm disc")
            #expect(upload.status == 0, "\(upload.output)")

            var ended = 0
            for pass in 1...Self.passes {
                let archiver = try Program.start(
                    "archiver", ["run", "--once", "--lease-seconds", "3", "--poll-seconds", "0.2", "--small-file-threshold", "64KiB", "--bundle-size", "64KiB"],
                    environment: harness.environment)
                let deadline = ContinuousClock.now + Self.passLimit
                while archiver.isRunning, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(Int(random.next() % 499) + 2))
                    ended += try await Self.endSessions(of: archiver, harness)
                }
                if archiver.isRunning {
                    Issue.record("seed \(seed): pass \(pass) still running \(Self.passLimit) into the storm: \(archiver.outputSoFar().suffix(3000))")
                    archiver.signal(SIGKILL)
                }
                let result = try await archiver.wait()
                let lines = result.output.split(separator: "\n")
                // A pass that lost its session says so in one line; any other failure is not this test's to accept.
                #expect(result.status == 0 || lines.contains { $0.contains("the connection to the database was lost") || $0.contains("terminating connection") },
                        "seed \(seed): pass \(pass): \(result.output.suffix(3000))")
            }
            #expect(ended > 0, "seed \(seed): the storm ended no session")

            let last = try await harness.archiveOnce(["--small-file-threshold", "64KiB", "--bundle-size", "64KiB"])
            #expect(last.status == 0, "seed \(seed): \(last.output.suffix(3000))")
            let notDone = try await harness.scalar(
                "SELECT count(*) FROM objectstoragefiles WHERE deleted_at IS NULL AND state NOT IN ('archived', 'duplicate')", as: Int64.self)
            let left = try await harness.rows().filter { $0.state != "archived" && $0.state != "duplicate" }
            #expect(notDone == 0, "seed \(seed): files not archived: \(left)")
            let verify = try await Program.run("uploader", ["verify"], environment: harness.environment)
            #expect(verify.status == 0, "seed \(seed): \(verify.output.suffix(3000))")
        }
    }

    /// Ends every current session of `child` (its pool names them `personal-backup <pid> …`); how many it ended.
    static func endSessions(of child: Subprocess.Running, _ harness: PipelineHarness) async throws -> Int {
        try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var count = 0
            for try await ended in try await client.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name LIKE \("personal-backup \(child.processID) %")
                """, logger: TestEnvironment.logger).decode(Bool.self) where ended {
                count += 1
            }
            return count
        }
    }
}
