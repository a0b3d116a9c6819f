/// Turns flags, environment, config file and defaults into a checked `PipelineConfiguration`.
///
/// Pure: the caller reads the environment and the config file and passes them in, so every rule is unit-testable.
public struct ConfigurationLoader: Sendable {
    /// Setting names, shared by environment variables, config-file keys and the flag table in the README.
    public enum Key {
        public static let dataDirectory = "BACKUP_DATA_DIR"
        public static let databaseURL = "DATABASE_URL"
        public static let stagingURL = "BACKUP_STAGING_URL"
        public static let archiveURL = "BACKUP_ARCHIVE_URL"
        public static let archiveStorageClass = "BACKUP_ARCHIVE_STORAGE_CLASS"
        public static let warmStorageClass = "BACKUP_WARM_STORAGE_CLASS"
        public static let alertWebhookURL = "BACKUP_ALERT_WEBHOOK_URL"
        public static let statusToken = "BACKUP_STATUS_TOKEN"
        public static let configFile = "BACKUP_CONFIG_FILE"
    }

    /// Values given on the command line, by setting name; they win over everything else.
    public var flags: [String: String]
    public var environment: [String: String]
    /// Values from the config file (`NAME=value` lines), by setting name.
    public var configFile: [String: String]
    /// `$HOME`, used for the default data directory.
    public var homeDirectory: String?
    /// Root gets `/var/lib/personal-backup` by default: the embedded cluster runs as the `postgres` user, which
    /// cannot enter root's home directory.
    public var isRoot: Bool

    public init(flags: [String: String] = [:], environment: [String: String], configFile: [String: String] = [:], homeDirectory: String?, isRoot: Bool) {
        self.flags = flags
        self.environment = environment
        self.configFile = configFile
        self.homeDirectory = homeDirectory
        self.isRoot = isRoot
    }

    /// The value of a setting; empty strings count as unset, as in most Unix tools.
    public func value(_ key: String) -> String? {
        for source in [flags, environment, configFile] {
            if let value = source[key], !value.isEmpty { return value }
        }
        return nil
    }

    public func load() throws(ConfigurationError) -> PipelineConfiguration {
        let dataDirectory = try resolveDataDirectory()

        let database: DatabaseSetting
        if let text = value(Key.databaseURL) {
            do {
                database = .server(try DatabaseURL(parsing: text))
            } catch {
                throw ConfigurationError(setting: Key.databaseURL, problem: error.reason)
            }
        } else {
            database = .embedded(clusterDirectory: DataLayout(root: dataDirectory).embeddedCluster)
        }

        let stagingURL = try storageURL(Key.stagingURL, default: .file(path: DataLayout(root: dataDirectory).defaultStaging))
        let archiveURL = try storageURL(Key.archiveURL, default: .file(path: DataLayout(root: dataDirectory).defaultArchive))
        if stagingURL == archiveURL {
            throw ConfigurationError(setting: Key.archiveURL, problem: "must differ from \(Key.stagingURL): staging copies are deleted once archived")
        }

        var storageClass = StorageClass.deepArchive
        if let text = value(Key.archiveStorageClass) {
            guard let parsed = StorageClass(rawValue: text.uppercased()) else {
                throw ConfigurationError(
                    setting: Key.archiveStorageClass,
                    problem: "unknown storage class; use one of \(StorageClass.known.sorted().joined(separator: ", "))")
            }
            storageClass = parsed
        }

        var warmClass = StorageClass.glacierInstantRetrieval
        if let text = value(Key.warmStorageClass) {
            // Only classes that read back without a restore request: that is what warm promises.
            guard let parsed = StorageClass(rawValue: text.uppercased()), TierStorageClasses.warmChoices.contains(parsed) else {
                throw ConfigurationError(
                    setting: Key.warmStorageClass,
                    problem: "must be \(TierStorageClasses.warmChoices.map(\.rawValue).joined(separator: ", ")) (a class that reads back at once)")
            }
            warmClass = parsed
        }

        let aws = try awsSettings()

        var webhook: Secret?
        if let text = value(Key.alertWebhookURL) {
            guard Self.isHTTPURL(text) else {
                throw ConfigurationError(setting: Key.alertWebhookURL, problem: "must be an http:// or https:// URL")
            }
            webhook = Secret(text)
        }

        let statusToken = value(Key.statusToken).map(Secret.init)
        if let token = statusToken, token.revealed.count < 16 {
            throw ConfigurationError(setting: Key.statusToken, problem: "must be at least 16 characters (try: openssl rand -hex 24)")
        }

        return PipelineConfiguration(
            dataDirectory: dataDirectory, database: database, stagingURL: stagingURL, archiveURL: archiveURL,
            archiveStorageClass: storageClass, warmStorageClass: warmClass, aws: aws, alertWebhookURL: webhook, statusToken: statusToken)
    }

    private func resolveDataDirectory() throws(ConfigurationError) -> String {
        var directory: String
        if let explicit = value(Key.dataDirectory) {
            directory = explicit
            guard directory.hasPrefix("/") else {
                throw ConfigurationError(setting: Key.dataDirectory, problem: "must be an absolute path")
            }
        } else if let xdg = value("XDG_DATA_HOME"), xdg.hasPrefix("/") {
            directory = xdg + "/personal-backup"
        } else if isRoot {
            directory = "/var/lib/personal-backup"
        } else if let home = homeDirectory, home.hasPrefix("/") {
            directory = home + "/.local/share/personal-backup"
        } else {
            throw ConfigurationError(setting: Key.dataDirectory, problem: "not set, and neither XDG_DATA_HOME nor HOME is an absolute path")
        }
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        return directory
    }

    private func storageURL(_ key: String, default defaultURL: StorageURL) throws(ConfigurationError) -> StorageURL {
        guard let text = value(key) else { return defaultURL }
        do {
            return try StorageURL(parsing: text)
        } catch {
            throw ConfigurationError(setting: key, problem: error.reason)
        }
    }

    private func awsSettings() throws(ConfigurationError) -> AWSSettings {
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        let regionCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard region.allSatisfy(regionCharacters.contains) else {
            throw ConfigurationError(setting: "AWS_REGION", problem: "must look like us-east-1 (lower-case letters, digits, '-')")
        }

        var endpoint: String?
        for key in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
            guard let text = value(key) else { continue }
            guard Self.isHTTPURL(text) else {
                throw ConfigurationError(setting: key, problem: "must be an http:// or https:// URL")
            }
            endpoint = text
            break
        }

        var credentials: AWSSettings.StaticCredentials?
        switch (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY")) {
        case (let keyID?, let secret?):
            credentials = .init(accessKeyID: keyID, secretAccessKey: Secret(secret), sessionToken: value("AWS_SESSION_TOKEN").map(Secret.init))
        case (.some, nil):
            throw ConfigurationError(setting: "AWS_SECRET_ACCESS_KEY", problem: "missing while AWS_ACCESS_KEY_ID is set")
        case (nil, .some):
            throw ConfigurationError(setting: "AWS_ACCESS_KEY_ID", problem: "missing while AWS_SECRET_ACCESS_KEY is set")
        case (nil, nil):
            credentials = nil
        }
        return AWSSettings(region: region, profile: value("AWS_PROFILE"), endpointURL: endpoint, staticCredentials: credentials)
    }

    private static func isHTTPURL(_ text: String) -> Bool {
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let host = text.dropFirst(scheme.count).prefix { $0 != "/" && $0 != "?" }
            return !host.isEmpty && !host.contains(" ")
        }
        return false
    }
}

/// The config file: `NAME=value` lines with the same names as the environment; `#` starts a comment line.
public enum ConfigurationFile {
    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let withoutExport = line.hasPrefix("export ") ? Substring(line.dropFirst("export ".count)).trimmingWhitespace() : line
            guard let equals = withoutExport.firstIndex(of: "="), equals != withoutExport.startIndex else {
                throw ConfigurationError(setting: "\(path):\(index + 1)", problem: "expected NAME=value")
            }
            let name = String(withoutExport[..<equals]).trimmingWhitespace()
            var value = Substring(withoutExport[withoutExport.index(after: equals)...]).trimmingWhitespace()
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[String(name)] = String(value)
        }
        return values
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
