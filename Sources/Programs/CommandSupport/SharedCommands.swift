import ArgumentParser
import Catalog
import Logging
import PipelineCore

/// The role a program records in the catalog; each executable names itself once.
public protocol ProgramRole {
    static var role: WorkerRole { get }
}

/// `<program> migrate`: brings the catalog schema up to date and reports its version.
public struct MigrateCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "migrate", abstract: "Create or update the catalog tables (every program also does this at start).")
    }

    @OptionGroup public var options: GlobalOptions

    public init() {}

    public func run() async throws {
        let context = try ProgramContext.load(options, role: Program.role)
        let report = try await CatalogDatabase.withMigratedClient(context.configuration.database, logger: context.logger) { _, report in report }
        let applied = report.applied.isEmpty ? "nothing to apply" : "applied \(report.applied.map(String.init).joined(separator: ", "))"
        print("catalog schema at version \(report.currentVersion) (\(applied))")
    }
}

/// `<program> config`: shows the effective settings with secrets redacted, or the one setting that is wrong.
public struct ConfigCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "config", abstract: "Check the settings and print them with secrets redacted.")
    }

    @OptionGroup public var options: GlobalOptions

    public init() {}

    public func run() async throws {
        let context = try ProgramContext.load(options, role: Program.role)
        for line in context.configuration.redactedSummary { print(line) }
    }
}

/// `<program> database status|stop`: the embedded PostgreSQL cluster, which outlives the programs on purpose.
public struct DatabaseCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "database", abstract: "Show or stop the catalog database.",
            subcommands: [DatabaseStatusCommand<Program>.self, DatabaseStopCommand<Program>.self])
    }

    public init() {}
}

public struct DatabaseStatusCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "status", abstract: "Connect to the catalog and print where it is and its schema version.")
    }

    @OptionGroup public var options: GlobalOptions

    public init() {}

    public func run() async throws {
        let context = try ProgramContext.load(options, role: Program.role)
        let url = try await CatalogDatabase.resolve(context.configuration.database, logger: context.logger)
        let (serverVersion, schemaVersion) = try await CatalogDatabase.withClient(url, logger: context.logger) { client in
            try await CatalogStatus.read(client, logger: context.logger)
        }
        print("database: \(url)")
        if case .embedded(let directory) = context.configuration.database {
            let cluster = EmbeddedPostgres(clusterDirectory: directory, logger: context.logger)
            print("embedded cluster: \(directory) (server pid \(cluster.serverProcessID().map(String.init) ?? "unknown"))")
        }
        print("server: \(serverVersion)")
        print("catalog schema version: \(schemaVersion.map(String.init) ?? "none (run migrate)")")
    }
}

public struct DatabaseStopCommand<Program: ProgramRole>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "stop", abstract: "Stop the embedded PostgreSQL cluster (the next program starts it again).")
    }

    @OptionGroup public var options: GlobalOptions

    public init() {}

    public func run() async throws {
        let context = try ProgramContext.load(options, role: Program.role)
        guard case .embedded(let directory) = context.configuration.database else {
            throw ValidationError("DATABASE_URL points at an external server; only the embedded cluster is stopped by this command")
        }
        let stopped = try await EmbeddedPostgres(clusterDirectory: directory, logger: context.logger).stop()
        print(stopped ? "stopped the embedded cluster in \(directory)" : "the embedded cluster in \(directory) was not running")
    }
}
