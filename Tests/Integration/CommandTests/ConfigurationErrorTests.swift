import SystemIO
import Catalog
import Foundation
import Testing
import TestSupport

/// Each malformed setting stops a real program with exit code 2 and one line that names the setting and never
/// repeats a secret.
@Suite("Configuration errors through the real executables")
struct ConfigurationErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let environment: [String: String]
        let setting: String
        let secret: String?
        var testDescription: String { setting }
    }

    static let cases: [Case] = [
        Case(environment: ["DATABASE_URL": "mysql://admin:pa55word-mysql@db/x"], setting: "DATABASE_URL", secret: "pa55word-mysql"),
        Case(environment: ["DATABASE_URL": "postgres://admin:pa55word-port@db:70000/x"], setting: "DATABASE_URL", secret: "pa55word-port"),
        Case(environment: ["DATABASE_URL": "postgres://admin:pa55word-ssl@db/x?sslmode=always"], setting: "DATABASE_URL", secret: "pa55word-ssl"),
        Case(environment: ["BACKUP_STAGING_URL": "s3://Bad_Bucket/x"], setting: "BACKUP_STAGING_URL", secret: nil),
        Case(environment: ["BACKUP_ARCHIVE_URL": "ftp://host/x"], setting: "BACKUP_ARCHIVE_URL", secret: nil),
        Case(environment: ["BACKUP_STAGING_URL": "file:///same", "BACKUP_ARCHIVE_URL": "file:///same/"], setting: "BACKUP_ARCHIVE_URL", secret: nil),
        Case(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "COLD"], setting: "BACKUP_ARCHIVE_STORAGE_CLASS", secret: nil),
        Case(environment: ["BACKUP_DATA_DIR": "relative/dir"], setting: "BACKUP_DATA_DIR", secret: nil),
        Case(environment: ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"], setting: "AWS_SECRET_ACCESS_KEY", secret: nil),
        Case(environment: ["AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-secret"], setting: "AWS_ACCESS_KEY_ID", secret: "wJalrXUtnFEMI-secret"),
        Case(environment: ["AWS_REGION": "US East"], setting: "AWS_REGION", secret: nil),
        Case(environment: ["AWS_ENDPOINT_URL_S3": "localhost:9000"], setting: "AWS_ENDPOINT_URL_S3", secret: nil),
        Case(environment: ["BACKUP_ALERT_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/tok3n-webhook"], setting: "BACKUP_ALERT_WEBHOOK_URL", secret: "tok3n-webhook"),
        Case(environment: ["BACKUP_STATUS_TOKEN": "short-tkn"], setting: "BACKUP_STATUS_TOKEN", secret: "short-tkn"),
        Case(environment: ["BACKUP_LOG_LEVEL": "loud"], setting: "BACKUP_LOG_LEVEL", secret: nil),
        Case(environment: ["BACKUP_CONFIG_FILE": "/nonexistent/config"], setting: "BACKUP_CONFIG_FILE", secret: nil),
    ]

    @Test("a malformed setting exits 2 with one line naming it", arguments: cases)
    func malformedSetting(_ testCase: Case) async throws {
        for program in ["uploader", "archiver"] {
            let result = try await Program.run(program, ["migrate"], environment: testCase.environment)
            #expect(result.status == 2, "\(program): \(result.output)")
            #expect(!result.output.contains("\n"), "one line only: \(result.output)")
            #expect(result.output.hasPrefix("configuration error: \(testCase.setting): "), "\(result.output)")
            if let secret = testCase.secret {
                #expect(!result.output.contains(secret), "the secret leaked: \(result.output)")
            }
        }
    }

    @Test("a flag overrides the environment, and is checked the same way")
    func flagOverridesEnvironment() async throws {
        let bad = try await Program.run("uploader", ["config", "--archive-storage-class", "COLD"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
        #expect(bad.status == 2)
        #expect(bad.output.hasPrefix("configuration error: BACKUP_ARCHIVE_STORAGE_CLASS"))

        let good = try await Program.run("uploader", ["config", "--archive-storage-class", "glacier", "--data-dir", "/srv/pb"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("BACKUP_ARCHIVE_STORAGE_CLASS=GLACIER"))
        #expect(good.output.contains("BACKUP_STAGING_URL=file:///srv/pb/staging"))
        #expect(good.output.contains("DATABASE_URL=(embedded cluster in /srv/pb/postgres)"))
    }

    @Test("the config file is read, the environment wins over it, and secrets stay redacted")
    func configFileAndRedaction() async throws {
        let directory = try TemporaryDirectory("cfg")
        defer { directory.remove() }
        let file = directory.path + "/config"
        try """
            # comments and blank lines are fine

            DATABASE_URL=postgres://owner:file-pa55word@db.internal:6543/catalog?sslmode=require
            BACKUP_STAGING_URL="s3://my-staging/raw"
            BACKUP_ARCHIVE_URL=s3://my-archive
            AWS_ACCESS_KEY_ID=AKIAFILEKEY
            AWS_SECRET_ACCESS_KEY=file-secret-key-value
            BACKUP_STATUS_TOKEN=0123456789abcdef-status
            BACKUP_ALERT_WEBHOOK_URL=https://hooks.example.com/abc-hook-token
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await Program.run("uploader", ["config", "--config", file], environment: ["BACKUP_ARCHIVE_URL": "s3://env-archive/x"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("DATABASE_URL=postgres://owner:***@db.internal:6543/catalog?sslmode=require"))
        #expect(result.output.contains("BACKUP_STAGING_URL=s3://my-staging/raw/"))
        #expect(result.output.contains("BACKUP_ARCHIVE_URL=s3://env-archive/x/"))
        for secret in ["file-pa55word", "file-secret-key-value", "0123456789abcdef-status", "abc-hook-token"] {
            #expect(!result.output.contains(secret), "\(secret) leaked")
        }

        try "NOT A SETTING LINE\n".write(toFile: file, atomically: true, encoding: .utf8)
        let malformed = try await Program.run("archiver", ["config", "--config", file])
        #expect(malformed.status == 2)
        #expect(malformed.output == "configuration error: \(file):1: expected NAME=value")
    }

    @Test("the settings of one program (transcode profile, status host and port) are read from the config file too",
          arguments: [
              ("transcoder", ["run", "--once"], "BACKUP_TRANSCODE_PROFILE=bogus", "BACKUP_TRANSCODE_PROFILE"),
              ("status-server", ["serve"], "BACKUP_STATUS_PORT=not-a-port", "BACKUP_STATUS_PORT"),
              ("pipeline", ["run", "/tmp", "--label", "x"], "BACKUP_TRANSCODE_PROFILE=bogus", "BACKUP_TRANSCODE_PROFILE"),
          ])
    func programSettingsFromConfigFile(program: String, arguments: [String], line: String, setting: String) async throws {
        let directory = try TemporaryDirectory("cfg")
        defer { directory.remove() }
        let file = directory.path + "/config"
        // Nothing listens on port 1: were the bad setting ignored, the program would stop on the database instead.
        try "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable\n\(line)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await Program.run(program, arguments + ["--config", file], environment: ["BACKUP_DATA_DIR": directory.path])
        #expect(result.status == 2, "\(result.output)")
        #expect(result.output.hasPrefix("configuration error: \(setting):"), "\(result.output)")
    }

    @Test("usage errors exit 2, help exits 0")
    func usage() async throws {
        let unknown = try await Program.run("uploader", ["migrate", "--no-such-flag"])
        #expect(unknown.status == 2)
        #expect(unknown.output.contains("Unknown option '--no-such-flag'"))

        for program in ["uploader", "transcoder", "archiver", "status-server", "pipeline"] {
            let help = try await Program.run(program, ["--help"])
            #expect(help.status == 0, "\(program) --help: \(help.output)")
            #expect(help.output.contains("migrate"), "\(program) offers migrate")
            let version = try await Program.run(program, ["--version"])
            #expect(version.status == 0)
            #expect(version.output == "0.1.0")
        }
    }

    @Test("transcoder libav reports the linked libav and the default profile's encoders")
    func libavReport() async throws {
        let result = try await Program.run("transcoder", ["libav"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("libavcodec "))
        #expect(result.output.contains("yes encoder libx265"))
        #expect(result.output.contains("yes filter bwdif"))
    }
}
