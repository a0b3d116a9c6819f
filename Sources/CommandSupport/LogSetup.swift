import Logging
import PipelineCore

/// Logging for the executables: human-readable lines on standard error, level from the settings.
public enum LogSetup {
    public static let levelSetting = "BACKUP_LOG_LEVEL"

    /// Bootstraps swift-log once per process (libraries only ever receive a `Logger`).
    static func bootstrap(role: WorkerRole, levelText: String?) throws(ConfigurationError) -> Logger {
        var level = Logger.Level.info
        if let levelText {
            guard let parsed = Logger.Level(rawValue: levelText.lowercased()) else {
                throw ConfigurationError(setting: levelSetting, problem: "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            level = parsed
        }
        bootstrapOnce
        var logger = Logger(label: "personal-backup.\(role.rawValue)")
        logger.logLevel = level
        return logger
    }

    private static let bootstrapOnce: Void = {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }()
}
