/// Everything the programs need to know about their surroundings, parsed and checked in one place.
///
/// Built by `ConfigurationLoader` from (highest precedence first) command-line flags, the environment, a config
/// file and the embedded defaults. The names of the settings are the contract in the README's Configuration section.
public struct PipelineConfiguration: Sendable {
    /// Local state: the embedded PostgreSQL cluster and the default file buckets.
    public var dataDirectory: String
    /// The local directories under `dataDirectory`.
    public var layout: DataLayout { DataLayout(root: dataDirectory) }
    public var database: DatabaseSetting
    public var stagingURL: StorageURL
    public var archiveURL: StorageURL
    public var archiveStorageClass: StorageClass
    /// Class of the archived data of warm sources (`--tier warm`): one that reads back at once.
    public var warmStorageClass: StorageClass
    /// The class of each tier: cold is `archiveStorageClass`.
    public var tierClasses: TierStorageClasses { TierStorageClasses(cold: archiveStorageClass, warm: warmStorageClass) }
    public var aws: AWSSettings
    /// Where alerts go; the URL itself usually carries a token, so it is a secret.
    public var alertWebhookURL: Secret?
    /// The bearer token the status server requires; nil means loopback only.
    public var statusToken: Secret?

    public init(
        dataDirectory: String, database: DatabaseSetting, stagingURL: StorageURL, archiveURL: StorageURL,
        archiveStorageClass: StorageClass, warmStorageClass: StorageClass = .glacierInstantRetrieval, aws: AWSSettings,
        alertWebhookURL: Secret?, statusToken: Secret?
    ) {
        self.dataDirectory = dataDirectory
        self.database = database
        self.stagingURL = stagingURL
        self.archiveURL = archiveURL
        self.archiveStorageClass = archiveStorageClass
        self.warmStorageClass = warmStorageClass
        self.aws = aws
        self.alertWebhookURL = alertWebhookURL
        self.statusToken = statusToken
    }

    /// The settings as `NAME=value` lines with every secret redacted, for `<program> config`.
    public var redactedSummary: [String] {
        var lines = [
            "BACKUP_DATA_DIR=\(dataDirectory)",
            "DATABASE_URL=\(database)",
            "BACKUP_STAGING_URL=\(stagingURL)",
            "BACKUP_ARCHIVE_URL=\(archiveURL)",
            "BACKUP_ARCHIVE_STORAGE_CLASS=\(archiveStorageClass)",
            "BACKUP_WARM_STORAGE_CLASS=\(warmStorageClass)",
            "AWS_REGION=\(aws.region)",
        ]
        if let profile = aws.profile { lines.append("AWS_PROFILE=\(profile)") }
        if let endpoint = aws.endpointURL { lines.append("AWS_ENDPOINT_URL_S3=\(endpoint)") }
        lines.append("AWS credentials=\(aws.staticCredentials == nil ? "credential chain (profile, ECS, EC2, web identity)" : "from AWS_ACCESS_KEY_ID \(aws.staticCredentials!.accessKeyID)")")
        lines.append("BACKUP_ALERT_WEBHOOK_URL=\(alertWebhookURL == nil ? "(none)" : "<redacted>")")
        lines.append("BACKUP_STATUS_TOKEN=\(statusToken == nil ? "(none: status server on loopback only)" : "<redacted>")")
        return lines
    }
}

/// Which PostgreSQL holds the catalog.
public enum DatabaseSetting: Sendable, Hashable, CustomStringConvertible {
    /// A private cluster under this directory, started (or reused) by the programs themselves.
    case embedded(clusterDirectory: String)
    case server(DatabaseURL)

    public var description: String {
        switch self {
        case .embedded(let directory): "(embedded cluster in \(directory))"
        case .server(let url): url.description
        }
    }
}

/// The standard AWS settings. Credentials that are not given here come from the credential chain.
public struct AWSSettings: Sendable, Hashable {
    public struct StaticCredentials: Sendable, Hashable {
        public var accessKeyID: String
        public var secretAccessKey: Secret
        public var sessionToken: Secret?

        public init(accessKeyID: String, secretAccessKey: Secret, sessionToken: Secret?) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public var region: String
    public var profile: String?
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: an S3-compatible server (MinIO, R2, B2, moto…).
    public var endpointURL: String?
    public var staticCredentials: StaticCredentials?

    public init(region: String, profile: String? = nil, endpointURL: String? = nil, staticCredentials: StaticCredentials? = nil) {
        self.region = region
        self.profile = profile
        self.endpointURL = endpointURL
        self.staticCredentials = staticCredentials
    }
}

/// A setting that is missing or malformed. The message names the setting and never repeats its value.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let setting: String
    public let problem: String

    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "configuration error: \(setting): \(problem)" }
}
