import ArgumentParser
import Catalog
import CommandSupport
import Foundation
import PipelineCore
import Restore
import UploadCommandSupport

/// `uploader maintenance …`: the scheduled maintenance tasks the archivers run (the admin page shows and changes
/// them too). Needs a database role that may write `maintenance_tasks` (the owner's, as `uploader users`).
struct MaintenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "List the scheduled maintenance tasks, or queue one to run now.",
        discussion: "The tasks: \(MaintenanceTaskName.allCases.map(\.rawValue).joined(separator: ", ")). The archivers run them between batches.",
        subcommands: [MaintenanceListCommand.self, MaintenanceRunCommand.self])
}

struct MaintenanceListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Each task's schedule, parameters, last run and result, and next run.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let context = try ProgramContext.load(options, role: .uploader)
        let tasks = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            try await MaintenanceCatalog(client: client, logger: context.logger).tasks()
        }
        let rows = tasks.map { task in
            [task.name.rawValue, MaintenanceSchedule.text(everySeconds: task.everySeconds), task.enabled ? "on" : "off",
             task.parameters.displayText(for: task.name).isEmpty ? "-" : task.parameters.displayText(for: task.name),
             task.lastFinishedAt.map(Format.timestamp) ?? (task.lastStartedAt == nil ? "never" : "-"), task.lastOutcome ?? "-",
             task.running ? "running now" : task.runRequested ? "asked: after the next batch" : task.enabled ? Format.timestamp(task.nextRunAt) : "- (off)"]
        }
        for line in Listing.table(["TASK", "SCHEDULE", "ENABLED", "PARAMETERS", "LAST RUN", "OUTCOME", "NEXT RUN"], rows) { print(line) }
        for task in tasks where task.lastResult != nil || task.lastError != nil {
            print("")
            if let result = task.lastResult { print("\(task.name.rawValue): \(result)") }
            if let error = task.lastError { print("\(task.name.rawValue): error: \(error)") }
        }
    }
}

struct MaintenanceRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Queue a task to run now: an archiver runs it after its current batch (also when the task is off).")

    @OptionGroup var options: GlobalOptions

    @Argument(help: ArgumentHelp("The task: \(MaintenanceTaskName.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var name: String

    func run() async throws {
        let task: MaintenanceTaskName
        do { task = try MaintenanceTaskName(parsing: name) } catch { throw usageError(error.message) }
        let context = try ProgramContext.load(options, role: .uploader)
        try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { client, _ in
            try await MaintenanceCatalog(client: client, logger: context.logger).requestRun(task)
        }
        print("\(task.rawValue) queued: an archiver runs it after its current batch (uploader maintenance list shows the result)")
    }
}
