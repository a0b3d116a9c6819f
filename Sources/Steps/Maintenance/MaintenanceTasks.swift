import ArchiveStep
import Catalog
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import Restore
import SystemIO

/// The four tasks, each the same code as its command (`uploader verify --sample`, `archiver export-catalog`,
/// `uploader restore-status`, `uploader audit`), with a one-paragraph result for the admin page.
struct MaintenanceTasks: Sendable {
    let archive: any ObjectStore
    let client: PostgresClient
    let settings: MaintenanceSettings
    let logger: Logger

    func perform(_ task: ClaimedMaintenanceTask) async throws -> MaintenanceOutcome {
        switch task.name {
        case .verifySample: try await verifySample(percent: task.parameters.percent ?? MaintenanceParameters.defaultPercent)
        case .exportCatalog: try await exportCatalog()
        case .refreshRestoreStatus: try await refreshRestoreStatus()
        case .audit: try await audit(sourceLabel: task.parameters.sourceLabel)
        }
    }

    /// Objects that fail make the run `failed`: that is what an admin must look at.
    func verifySample(percent: Double) async throws -> MaintenanceOutcome {
        let report = try await VerifyRun(
            catalog: RestoreCatalog(client: client, logger: logger), archive: archive,
            configuration: VerifyConfiguration(samplePercent: percent, concurrency: settings.concurrency), progress: Self.silent
        ).run()
        let result = "checked \(report.objectsChecked) of \(report.objectsTotal) archive objects (\(JSONValue.number(percent).displayText) %): "
            + "\(report.contentVerified) read back and matched their SHA-256, \(report.sizeOnly) by size and class only (their bytes need a restore), "
            + "\(report.failures.count) failed; \(report.coverage30Days) of \(report.objectsTotal) verified in the last 30 days."
        guard report.failures.isEmpty else {
            let shown = report.failures.prefix(5).joined(separator: "; ")
            return .failed(result: result, error: "\(report.failures.count) archive object\(report.failures.count == 1 ? "" : "s") failed verification: \(shown)"
                + (report.failures.count > 5 ? "; …" : ""))
        }
        return .ok(result)
    }

    func exportCatalog() async throws -> MaintenanceOutcome {
        try Self.makeDirectory(settings.workDirectory)
        let written = try await CatalogExport(
            client: client, archive: archive, workDirectory: settings.workDirectory, policy: CatalogExportPolicy(whole: true), logger: logger
        ).run(waitingForOthers: true)
        guard let written else { return .ok("another worker's export was running; nothing written") }
        return .ok("wrote the whole catalog export: \(Format.count(Int64(written.rows))) rows to \(written.key).")
    }

    func refreshRestoreStatus() async throws -> MaintenanceOutcome {
        let before = try await RestoreCatalog(client: client, logger: logger).restoreRequests().filter { $0.state != "expired" }
        let after = try await RestoreStatusRefresh.run(catalog: RestoreCatalog(client: client, logger: logger), archive: archive)
        let asked = Set(before.map(\.archiveKey))
        let states = after.filter { asked.contains($0.archiveKey) }.map(\.state)
        let count = { (state: String) in states.filter { $0 == state }.count }
        return .ok("asked the archive about \(asked.count) restore request\(asked.count == 1 ? "" : "s"): \(count("ready")) ready, "
            + "\(count("pending")) still pending, \(count("expired")) expired since the last look.")
    }

    /// A source that is not safe is a verdict, not a failure of the task: the run is `ok` and its result names it.
    func audit(sourceLabel: String?) async throws -> MaintenanceOutcome {
        let directory = settings.workDirectory + "/maintenance-audit"
        try Self.makeDirectory(directory)
        let report = try await AuditRun(
            catalog: AuditCatalog(client: client, logger: logger), archive: archive,
            configuration: AuditConfiguration(sourceLabel: sourceLabel, workDirectory: directory, concurrency: settings.concurrency), progress: Self.silent
        ).run()
        let unsafe = report.sources.filter { !$0.isSafe }
        var result = "audited \(report.sources.count) source\(report.sources.count == 1 ? "" : "s"): \(report.sources.count - unsafe.count) safe, \(unsafe.count) not safe"
        if !unsafe.isEmpty {
            result += " (" + unsafe.prefix(10).map { "\($0.label): \($0.problems.count) problem\($0.problems.count == 1 ? "" : "s")" }.joined(separator: ", ")
                + (unsafe.count > 10 ? ", …" : "") + ")"
        }
        let files = report.sources.reduce(0) { $0 + $1.files }
        let read = report.sources.reduce(0) { $0 + $1.contentVerified }
        return .ok(result + "; \(files) files, \(read) read back and matched. The verdicts are kept per source.")
    }

    /// The work directory, or one line that says why not.
    static func makeDirectory(_ path: String) throws {
        do {
            try POSIXFile.makeDirectories(path)
        } catch let error as FileIOError {
            throw MaintenanceError(.taskFailed, "cannot make the work directory \(path): \(String(cString: strerror(error.code)))")
        }
    }

    static let silent = RestoreProgress(style: .silent) { _, _ in }

    /// One line, never a credential: the project's errors say what failed; the database's are described safely.
    static func describe(_ error: any Error) -> String {
        let text = CatalogDatabase.describe(error)
        return text.count > 2000 ? String(text.prefix(2000)) + "…" : text
    }
}
