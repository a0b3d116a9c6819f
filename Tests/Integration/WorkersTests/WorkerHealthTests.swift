import Foundation
import Testing
import TestSupport
import SystemIO

/// `archiver health` / `transcoder health` against a real worker process: healthy while it renews its heartbeat,
/// unhealthy while it is frozen (SIGSTOP, what `podman pause` does) and healthy again when it goes on, unhealthy once
/// it stopped, and for a role with no worker or a catalog that cannot be reached.
@Suite("worker health", .onOwnThreads)
struct WorkerHealthTests {
    static func health(_ program: String, _ harness: PipelineHarness, _ extra: [String] = [], environment: [String: String] = [:]) async throws -> Subprocess.Result {
        try await Program.run(program, ["health", "--stale-after-seconds", "4"] + extra, environment: harness.environment.merging(environment) { $1 })
    }

    /// `docker/healthcheck` with `HEALTHCHECK_PID` naming a worker process on this host.
    static func healthcheckScript(pid: Int32, _ harness: PipelineHarness) async throws -> Subprocess.Result {
        let script = FaultProxy.repositoryRoot + "/docker/healthcheck"
        let environment = harness.environment.merging(["HEALTHCHECK_PID": String(pid), "HEALTHCHECK_STALE_AFTER": "4"]) { $1 }
        return try await Subprocess.run("/usr/bin/env", environment.map { "\($0.key)=\($0.value)" } + ["bash", script])
    }

    /// Polls `health` until its exit status is `status`, at most `limit`.
    static func awaitHealth(_ status: Int32, _ harness: PipelineHarness, limit: Duration = .seconds(30)) async throws -> Subprocess.Result {
        let deadline = ContinuousClock.now + limit
        var result = try await health("archiver", harness)
        while result.status != status, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            result = try await health("archiver", harness)
        }
        return result
    }

    /// Polls until `process` is in `state`, at most `limit`.
    static func awaitState(_ state: Character, of process: Subprocess.Running, limit: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.processState != state, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.processState == state
    }

    @Test("healthy while the archiver renews its heartbeat; unhealthy while it is frozen, healthy when it goes on; unhealthy once stopped")
    func followsTheHeartbeat() async throws {
        try await PipelineHarness.with(.file) { harness in
            let worker = try Program.start("archiver", ["run", "--lease-seconds", "3", "--poll-seconds", "0.5"], environment: harness.environment)
            defer { worker.signal(SIGKILL) }
            let up = try await Self.awaitHealth(0, harness)
            #expect(up.status == 0 && up.output.hasPrefix("healthy: archiver "), "\(up.output)")
            // The image's health check script, pointed at this process instead of PID 1, runs the same check.
            let script = try await Self.healthcheckScript(pid: worker.processID, harness)
            #expect(script.status == 0 && script.output.contains("healthy: archiver "), "\(script.output)")

            kill(worker.processID, SIGSTOP)
            // kill(2) only queues SIGSTOP: on a loaded machine the process takes a moment to be stopped.
            #expect(try await Self.awaitState("T", of: worker), "the worker never stopped")
            let frozenScript = try await Self.healthcheckScript(pid: worker.processID, harness)
            #expect(frozenScript.status == 1 && frozenScript.output.contains("is in state T"), "\(frozenScript.output)")
            let frozen = try await Self.awaitHealth(1, harness)
            kill(worker.processID, SIGCONT)
            #expect(frozen.status == 1 && frozen.output.contains("its heartbeat is") && frozen.output.contains("stale after 4 s"), "\(frozen.output)")
            let thawed = try await Self.awaitHealth(0, harness)
            #expect(thawed.status == 0, "\(thawed.output)")

            worker.signal(SIGTERM)
            _ = try await worker.wait()
            let stopped = try await Self.health("archiver", harness)
            #expect(stopped.status == 1 && stopped.output.contains("stopped ("), "\(stopped.output)")
        }
    }

    @Test("no worker of the role on this host, or a catalog that cannot be reached: unhealthy, one line")
    func nothingToVouchFor() async throws {
        try await PipelineHarness.with(.file) { harness in
            let none = try await Self.health("transcoder", harness)
            #expect(none.status == 1 && none.output.contains("unhealthy: no transcoder on "), "\(none.output)")
            let unreachable = try await Self.health("archiver", harness, environment: ["DATABASE_URL": "postgres://backup@127.0.0.1:1/none?sslmode=disable"])
            #expect(unreachable.status == 1 && unreachable.output.contains("unhealthy: the catalog cannot be read"), "\(unreachable.output)")
        }
    }
}
