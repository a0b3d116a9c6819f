import PipelineCore
import Testing

@Suite("Configuration loading")
struct ConfigurationLoaderTests {
    func load(flags: [String: String] = [:], environment: [String: String] = [:], file: [String: String] = [:], isRoot: Bool = false) throws -> PipelineConfiguration {
        try ConfigurationLoader(flags: flags, environment: environment, configFile: file, homeDirectory: "/home/ada", isRoot: isRoot).load()
    }

    @Test("embedded defaults under the XDG data directory")
    func defaults() throws {
        let configuration = try load()
        #expect(configuration.dataDirectory == "/home/ada/.local/share/personal-backup")
        #expect(configuration.database == .embedded(clusterDirectory: "/home/ada/.local/share/personal-backup/postgres"))
        #expect(configuration.stagingURL == .file(path: "/home/ada/.local/share/personal-backup/staging"))
        #expect(configuration.archiveURL == .file(path: "/home/ada/.local/share/personal-backup/archive"))
        #expect(configuration.archiveStorageClass == .deepArchive)
        #expect(configuration.aws.region == "us-east-1")
        #expect(configuration.aws.staticCredentials == nil)
        #expect(configuration.alertWebhookURL == nil)
        #expect(configuration.statusToken == nil)

        #expect(try load(environment: ["XDG_DATA_HOME": "/data"]).dataDirectory == "/data/personal-backup")
        #expect(try load(isRoot: true).dataDirectory == "/var/lib/personal-backup")
    }

    @Test("flags beat the environment, which beats the config file; empty values count as unset")
    func precedence() throws {
        let key = ConfigurationLoader.Key.archiveStorageClass
        #expect(try load(flags: [key: "GLACIER"], environment: [key: "STANDARD"], file: [key: "ONEZONE_IA"]).archiveStorageClass == .glacier)
        #expect(try load(environment: [key: "STANDARD"], file: [key: "GLACIER"]).archiveStorageClass == .standard)
        #expect(try load(environment: [key: ""], file: [key: "GLACIER"]).archiveStorageClass == .glacier)
        #expect(try load(environment: ["DATABASE_URL": ""]).database == .embedded(clusterDirectory: "/home/ada/.local/share/personal-backup/postgres"))
    }

    @Test("AWS settings: region fallback, endpoint preference, static credentials")
    func aws() throws {
        let configuration = try load(environment: [
            "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2",
            "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "t0k3n", "AWS_PROFILE": "backup",
        ])
        #expect(configuration.aws.region == "eu-central-1")
        #expect(configuration.aws.endpointURL == "http://127.0.0.1:2")
        #expect(configuration.aws.profile == "backup")
        #expect(configuration.aws.staticCredentials?.secretAccessKey.revealed == "s3cr3t")
        #expect(configuration.aws.staticCredentials?.sessionToken?.revealed == "t0k3n")
        let summary = configuration.redactedSummary.joined(separator: "\n")
        #expect(!summary.contains("s3cr3t"))
        #expect(!summary.contains("t0k3n"))
    }

    @Test("the config file format")
    func configFile() throws {
        let values = try ConfigurationFile.parse("""
            # a comment
            export DATABASE_URL = "postgres://u@h/d"
            BACKUP_STATUS_TOKEN='abc=def'

            EMPTY=
            """, path: "cfg")
        #expect(values == ["DATABASE_URL": "postgres://u@h/d", "BACKUP_STATUS_TOKEN": "abc=def", "EMPTY": ""])
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationFile.parse("ok=1\n=novalue\n", path: "cfg") }
        #expect(error?.setting == "cfg:2")
    }

    @Test("secrets print as <redacted>")
    func secretDescription() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
    }
}
