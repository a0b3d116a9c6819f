import ArgumentParser
import Catalog
import Foundation
import Logging
import PipelineCore

/// `transcoder health` / `archiver health`: is this machine's (this container's) worker alive and working? It is, when
/// its newest row in `workers` has a heartbeat younger than `--stale-after-seconds` and no recorded stop. The
/// heartbeat is renewed every third of the lease by the worker's own task, so a process that is up but stuck
/// (a hung database connection, a deadlock) turns unhealthy too, which a check of the process alone cannot see.
/// Exit 0 healthy, 1 unhealthy, one line saying why either way. Used by the image's HEALTHCHECK.
public struct HealthCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "health", abstract: "Exit 0 when this host's worker has a fresh heartbeat in the catalog, 1 when not.")
    }

    @OptionGroup public var options: GlobalOptions

    @Option(help: "The worker's process id (default: the newest worker of this role on this host; in a container, the only one).")
    public var pid: Int32?

    @Option(help: "A heartbeat older than this is stale (default 90 s: three leases of 30 s; the worker renews every 10 s).")
    public var staleAfterSeconds: Double = 90

    public init() {}

    public func run() async throws {
        let context = try ProgramContext.load(options, role: Program.role)
        let host = ProcessInfo.processInfo.hostName
        let role = Program.role
        let staleAfter = staleAfterSeconds
        let processID = pid
        // The answer is one line; a migration's info lines (this check may be the first program on a fresh
        // catalog) would bury it, so only warnings and errors are logged.
        var logger = context.logger
        logger.logLevel = max(logger.logLevel, .warning)
        let verdict: (healthy: Bool, line: String)
        do {
            // Migrated like every program's start, so a fresh catalog reads as "no worker yet", not as an error.
            verdict = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: logger) { client, _ in
                let pulse = try await WorkQueue(client: client, logger: logger).pulse(role: role, host: host, processID: processID)
                return Self.judge(pulse, role: role, host: host, staleAfter: staleAfter)
            }
        } catch {
            verdict = (false, "unhealthy: the catalog cannot be read: \(CatalogDatabase.describe(error))")
        }
        print(verdict.line)
        if !verdict.healthy { throw ExitCode(1) }
    }

    /// The verdict on a worker's row (pure, so the rule is tested without a clock).
    static func judge(_ pulse: WorkQueue.WorkerPulse?, role: WorkerRole, host: String, staleAfter: Double) -> (healthy: Bool, line: String) {
        guard let pulse else { return (false, "unhealthy: no \(role.rawValue) on \(host) has registered in the catalog") }
        let who = "\(role.rawValue) \(pulse.workerID.uuidString.lowercased()) on \(host)"
        if pulse.stopped { return (false, "unhealthy: \(who) stopped (\(pulse.stopReason ?? "no reason recorded"))") }
        // The database's clock and this one may differ by a little; a heartbeat is never younger than now.
        let age = String(format: "%.0f", max(0, pulse.heartbeatAge))
        if pulse.heartbeatAge > staleAfter {
            return (false, "unhealthy: \(who): its heartbeat is \(age) s old (stale after \(String(format: "%.0f", staleAfter)) s)")
        }
        return (true, "healthy: \(who), heartbeat \(age) s ago")
    }
}
