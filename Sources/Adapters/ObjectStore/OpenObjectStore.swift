import AsyncHTTPClient
import Logging
import PipelineCore
import SigV4

/// Everything needed to open a store from a URL.
public struct ObjectStoreSettings: Sendable {
    /// The process environment (or a test's dictionary): the credential chain and S3 defaults read it.
    public var environment: [String: String]
    /// Region, endpoint and addressing; nil derives them from `environment`.
    public var s3: S3Configuration?
    /// nil uses the standard chain over `environment`.
    public var credentials: (any CredentialProvider)?
    public var httpClient: HTTPClient
    public var fileSystem: FileSystemObjectStore.Configuration
    public var logger: Logger
    /// `--bwlimit` and `--window` for every S3 store opened with these settings (one per process, shared by all its
    /// stores); `file://` stores are not paced.
    public var throttle: TransferThrottle?

    public init(
        environment: [String: String], s3: S3Configuration? = nil, credentials: (any CredentialProvider)? = nil,
        httpClient: HTTPClient = ObjectStoreHTTPClient.shared,
        fileSystem: FileSystemObjectStore.Configuration = FileSystemObjectStore.Configuration(),
        logger: Logger = Logger(label: "ObjectStore")
    ) {
        self.environment = environment
        self.s3 = s3
        self.credentials = credentials
        self.httpClient = httpClient
        self.fileSystem = fileSystem
        self.logger = logger
    }

    /// Settings from the pipeline's validated configuration: its region, endpoint, profile and static keys win over
    /// the environment; anything it leaves open comes from the credential chain.
    /// `fileRestoreDelay` makes `file://` restores take that long (tests; Deep Archive's take hours).
    public init(aws: AWSSettings, environment: [String: String], fileRestoreDelay: Duration? = nil, logger: Logger = Logger(label: "ObjectStore")) {
        var environment = environment
        if let profile = aws.profile { environment["AWS_PROFILE"] = profile }
        var s3 = S3Configuration.fromEnvironment(environment)
        s3.region = aws.region
        if let endpoint = aws.endpointURL { s3.endpoint = endpoint }
        var credentials: (any CredentialProvider)?
        if let keys = aws.staticCredentials {
            credentials = StaticCredentialProvider(AWSCredentials(
                accessKeyID: keys.accessKeyID, secretAccessKey: keys.secretAccessKey.revealed,
                sessionToken: keys.sessionToken?.revealed))
        }
        var fileSystem = FileSystemObjectStore.Configuration()
        if let fileRestoreDelay { fileSystem.restoreDelay = fileRestoreDelay }
        self.init(environment: environment, s3: s3, credentials: credentials, fileSystem: fileSystem, logger: logger)
    }
}

/// Opens the store a `BACKUP_*_URL` names: `s3://bucket/prefix` or `file:///path`.
public func openObjectStore(url: StorageURL, settings: ObjectStoreSettings) async throws -> any ObjectStore {
    switch url {
    case .file(let path):
        return try await FileSystemObjectStore(root: path, configuration: settings.fileSystem)
    case .s3(let bucket, let prefix):
        let credentials = settings.credentials
            ?? CredentialChain(environment: settings.environment, httpClient: settings.httpClient)
        return try S3ObjectStore(
            bucket: bucket, prefix: prefix, configuration: settings.s3 ?? .fromEnvironment(settings.environment),
            credentials: credentials, httpClient: settings.httpClient, logger: settings.logger, throttle: settings.throttle)
    }
}
