import ArgumentParser
import PipelineCore

/// The flags every program accepts. Each overrides the environment variable of the same meaning; secrets
/// (database password, AWS keys, webhook URL, status token) are better given by environment or config file,
/// since command lines are visible to other users in `ps`.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("config"), help: ArgumentHelp("A config file of NAME=value lines (same names as the environment variables).", valueName: "file"))
    public var configFile: String?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Local state: embedded PostgreSQL and file buckets (BACKUP_DATA_DIR).", valueName: "path"))
    public var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: ArgumentHelp("postgres://user:pass@host:port/db?sslmode=… (DATABASE_URL); default: embedded cluster.", valueName: "url"))
    public var databaseURL: String?

    @Option(name: .customLong("staging-url"), help: ArgumentHelp("s3://bucket/prefix or file:///path (BACKUP_STAGING_URL).", valueName: "url"))
    public var stagingURL: String?

    @Option(name: .customLong("archive-url"), help: ArgumentHelp("s3://bucket/prefix or file:///path (BACKUP_ARCHIVE_URL).", valueName: "url"))
    public var archiveURL: String?

    @Option(name: .customLong("archive-storage-class"), help: ArgumentHelp("Storage class of archived data (BACKUP_ARCHIVE_STORAGE_CLASS), default DEEP_ARCHIVE.", valueName: "class"))
    public var archiveStorageClass: String?

    @Option(name: .customLong("warm-storage-class"), help: ArgumentHelp("Storage class of warm sources' data (BACKUP_WARM_STORAGE_CLASS): GLACIER_IR (default), STANDARD_IA or STANDARD.", valueName: "class"))
    public var warmStorageClass: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (BACKUP_LOG_LEVEL).", valueName: "level"))
    public var logLevel: String?

    public init() {}

    /// The flags that were given, by setting name.
    var settingOverrides: [String: String] {
        var flags: [String: String] = [:]
        flags[ConfigurationLoader.Key.dataDirectory] = dataDirectory
        flags[ConfigurationLoader.Key.databaseURL] = databaseURL
        flags[ConfigurationLoader.Key.stagingURL] = stagingURL
        flags[ConfigurationLoader.Key.archiveURL] = archiveURL
        flags[ConfigurationLoader.Key.archiveStorageClass] = archiveStorageClass
        flags[ConfigurationLoader.Key.warmStorageClass] = warmStorageClass
        flags[LogSetup.levelSetting] = logLevel
        return flags
    }
}
