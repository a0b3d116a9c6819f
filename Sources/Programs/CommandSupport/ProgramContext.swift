#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Catalog
import Foundation
import Logging
import ObjectStore
import PostgresNIO
import PipelineCore
import ServiceLifecycle
import Telemetry

/// What a command needs to start: the checked configuration and a logger for its role.
public struct ProgramContext: Sendable {
    public let role: WorkerRole
    public let configuration: PipelineConfiguration
    public let logger: Logger
    /// The OTLP exporters' services when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (empty otherwise): run them in the
    /// program's service group, before the others, so that they stop last and flush.
    public let telemetryServices: [any Service]
    /// The queue of log lines for `worker_logs` (the long-running programs only); `workerLogServices` drains it.
    public let workerLogs: WorkerLogQueue?
    /// Every setting by name, with the one precedence (flags, environment, config file; empty values unset), for the
    /// settings that belong to a single program (`BACKUP_TRANSCODE_PROFILE`, `BACKUP_STATUS_HOST`/`PORT`, …): so
    /// that they too can be put in the config file, as every setting can.
    public let settings: [String: String]
    /// The end-to-end tests' hooks, read once here.
    public let hooks: TestHooks
    /// The process environment as read at start (the credential chain and S3 defaults look at it).
    let environment: [String: String]
    /// `--bwlimit` and `--window` (``TransferLimitOptions``), shared by every S3 store `openStore` opens.
    public var transferThrottle: TransferThrottle?

    /// The local directories under `BACKUP_DATA_DIR`.
    public var layout: DataLayout { configuration.layout }

    /// One setting by name, as `settings` resolves it.
    public func setting(_ name: String) -> String? { settings[name] }

    /// Reads the config file and environment, applies the flags, checks everything, and sets up logging.
    /// Throws `ConfigurationError` (exit code 2) with one line naming the setting.
    public static func load(_ options: GlobalOptions, role: WorkerRole) throws -> ProgramContext {
        let environment = ProcessInfo.processInfo.environment
        let flags = options.settingOverrides
        let fileValues = try readConfigFile(explicitPath: options.configFile ?? nonEmpty(environment[ConfigurationLoader.Key.configFile]), environment: environment)
        let loader = ConfigurationLoader(
            flags: flags, environment: environment, configFile: fileValues,
            homeDirectory: environment["HOME"], isRoot: geteuid() == 0)
        let configuration = try loader.load()
        // The uploader runs no service group that could export; the long-running programs do.
        var telemetry: Telemetry?
        do {
            if role != .uploader { telemetry = try Telemetry.start(serviceName: "personal-backup-\(role.rawValue)", version: PipelineVersion.current, environment: environment) }
        } catch {
            throw ConfigurationError(setting: error.setting, problem: error.message)
        }
        // The long-running programs keep their notice-and-above lines in the catalog for the admin page.
        let workerLogs = [.transcoder, .archiver, .statusServer, .pipeline].contains(role)
            ? WorkerLogQueue(
                program: role.rawValue, worker: "\(ProcessInfo.processInfo.hostName) pid \(getpid())",
                redaction: LogRedaction(knownSecrets: configuration.secretValues))
            : nil
        let logger = try LogSetup.bootstrap(
            role: role, levelText: loader.value(LogSetup.levelSetting), formatText: loader.value(LogSetup.formatSetting),
            extraHandler: telemetry?.logHandler, workerLogs: workerLogs)
        var settings: [String: String] = [:]
        for source in [fileValues, environment, flags] {
            for (name, value) in source where !value.isEmpty { settings[name] = value }
        }
        return ProgramContext(
            role: role, configuration: configuration, logger: logger, telemetryServices: telemetry?.services ?? [], workerLogs: workerLogs,
            settings: settings, hooks: TestHooks.read(from: environment), environment: environment)
    }

    /// An explicit file must exist; the default `~/.config/personal-backup/config` is read only when present.
    static func readConfigFile(explicitPath: String?, environment: [String: String]) throws(ConfigurationError) -> [String: String] {
        let path: String
        if let explicitPath {
            path = explicitPath
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationError(setting: ConfigurationLoader.Key.configFile, problem: "no file at \(path)")
            }
        } else {
            let configHome = nonEmpty(environment["XDG_CONFIG_HOME"]) ?? (nonEmpty(environment["HOME"]).map { $0 + "/.config" } ?? "")
            path = configHome + "/personal-backup/config"
            guard !configHome.isEmpty, FileManager.default.fileExists(atPath: path) else { return [:] }
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(setting: ConfigurationLoader.Key.configFile, problem: "cannot read \(path) as UTF-8 text")
        }
        return try ConfigurationFile.parse(text, path: path)
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}

extension ProgramContext {
    /// Opens a bucket (`s3://…` or `file://…`) with the configured region, endpoint, credentials and hooks: the one
    /// place every program opens its stores.
    public func openStore(_ url: StorageURL, logger: Logger? = nil) async throws -> any ObjectStore {
        var settings = ObjectStoreSettings(
            aws: configuration.aws, environment: environment, fileRestoreDelay: hooks.fileRestoreDelay, logger: logger ?? self.logger)
        settings.throttle = transferThrottle
        return try await openObjectStore(url: url, settings: settings)
    }

    /// The staging bucket (`BACKUP_STAGING_URL`).
    public func openStaging(logger: Logger? = nil) async throws -> any ObjectStore {
        try await openStore(configuration.stagingURL, logger: logger)
    }

    /// The archive bucket (`BACKUP_ARCHIVE_URL`).
    public func openArchive(logger: Logger? = nil) async throws -> any ObjectStore {
        try await openStore(configuration.archiveURL, logger: logger)
    }
}

extension ProgramContext {
    /// The service that writes the queued log lines to `worker_logs` (none for the uploader). Put it first in the
    /// service group, after telemetry: it stops after the others, so that it writes what they logged on the way out.
    public func workerLogServices(client: PostgresClient) -> [any Service] {
        guard let workerLogs else { return [] }
        var databaseLogger = Logger(label: LogSetup.workerLogWriterLabel)
        databaseLogger.logLevel = logger.logLevel
        return [WorkerLogService(writer: WorkerLogWriter(queue: workerLogs, client: client, databaseLogger: databaseLogger, reportTo: logger))]
    }
}

/// `WorkerLogWriter` as a service: writes every second until graceful shutdown, then once more.
struct WorkerLogService: Service {
    let writer: WorkerLogWriter

    func run() async throws {
        await cancelWhenGracefulShutdown { await writer.run() }
        await writer.flush()
    }
}
