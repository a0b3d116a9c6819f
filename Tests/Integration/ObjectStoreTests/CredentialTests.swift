import Foundation
import NIOCore
import NIOHTTP1
import SigV4
import Testing
@testable import ObjectStore

@Suite("credential providers and the chain")
struct CredentialTests {
    static let expiry = "2099-01-01T00:00:00Z"

    static func credentialsJSON(_ id: String, expiration: String = expiry) -> [UInt8] {
        Array("""
            {"Code":"Success","AccessKeyId":"\(id)","SecretAccessKey":"secret-\(id)","Token":"token-\(id)",\
            "Expiration":"\(expiration)","Type":"AWS-HMAC","LastUpdated":"2024-01-01T00:00:00Z"}
            """.utf8)
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "credentials-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: environment and profiles

    @Test("environment keys, and a half-set pair is an error")
    func environment() throws {
        let credentials = try #require(try EnvironmentCredentials.read(from: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
        ]))
        #expect(credentials.accessKeyID == "AKID" && credentials.secretAccessKey == "SECRET")
        #expect(credentials.sessionToken == "TOKEN")
        #expect(try EnvironmentCredentials.read(from: [:]) == nil)
        let error = #expect(throws: ObjectStoreError.self) {
            try EnvironmentCredentials.read(from: ["AWS_ACCESS_KEY_ID": "AKID"])
        }
        #expect(error?.description.contains("AWS_SECRET_ACCESS_KEY") == true)
        #expect(!"\(credentials)".contains("SECRET") && !"\(credentials)".contains("TOKEN"))
    }

    @Test("profiles from temporary credentials and config files")
    func profiles() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            # comment
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret

            [work]
            aws_access_key_id=WORKKEY
            aws_secret_access_key = worksecret ; inline comment
            aws_session_token = worktoken
            """.write(toFile: directory + "/credentials", atomically: true, encoding: .utf8)
        try """
            [default]
            region = eu-central-1
            [profile fromconfig]
            aws_access_key_id = CONFIGKEY
            aws_secret_access_key = configsecret
            region = eu-west-1
            s3 =
              addressing_style = path
            [profile assumed]
            role_arn = arn:aws:iam::123456789012:role/x
            source_profile = default
            """.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
        let base = ["AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials", "AWS_CONFIG_FILE": directory + "/config",
                    "AWS_EC2_METADATA_DISABLED": "true"]

        #expect(try await CredentialChain(environment: base).credentials().accessKeyID == "DEFAULTKEY")
        let work = try await CredentialChain(environment: base.merging(["AWS_PROFILE": "work"]) { $1 }).credentials()
        #expect(work.accessKeyID == "WORKKEY" && work.secretAccessKey == "worksecret" && work.sessionToken == "worktoken")
        let config = try await CredentialChain(environment: base.merging(["AWS_PROFILE": "fromconfig"]) { $1 })
            .credentials()
        #expect(config.accessKeyID == "CONFIGKEY")
        #expect(SharedConfigFiles.region(environment: base) == "eu-central-1")
        #expect(SharedConfigFiles.region(environment: base.merging(["AWS_PROFILE": "fromconfig"]) { $1 }) == "eu-west-1")

        let missing = await #expect(throws: ObjectStoreError.self) {
            _ = try await CredentialChain(environment: base.merging(["AWS_PROFILE": "nope"]) { $1 }).credentials()
        }
        #expect(missing?.description.contains("nope") == true)
        let unsupported = await #expect(throws: ObjectStoreError.self) {
            _ = try await CredentialChain(environment: base.merging(["AWS_PROFILE": "assumed"]) { $1 }).credentials()
        }
        #expect(unsupported?.description.contains("source_profile") == true)

        // The environment wins over the profile files.
        let fromEnvironment = try await CredentialChain(environment: base.merging([
            "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_PROFILE": "work",
        ]) { $1 }).credentials()
        #expect(fromEnvironment.accessKeyID == "ENVKEY")
    }

    @Test("with nothing configured the chain fails with one clear message")
    func nothingConfigured() async throws {
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await CredentialChain(environment: [
                "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
            ]).credentials()
        }
        #expect(error?.kind == .credentialsUnavailable)
        #expect(error?.description.contains("AWS_ACCESS_KEY_ID") == true)
    }

    // MARK: metadata endpoints

    @Test("ECS container credentials with an authorization token file")
    func containerCredentials() async throws {
        let server = try await LoopbackHTTPServer { request, _ in
            guard request.path == "/v2/credentials/abc", request.headers.first(name: "Authorization") == "Bearer xyz"
            else { return .respond(status: .forbidden) }
            return .respond(status: .ok, headers: [("Content-Type", "application/json")],
                            body: Self.credentialsJSON("ECSKEY"))
        }
        defer { Task { await server.shutdown() } }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "Bearer xyz\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)

        let credentials = try await CredentialChain(environment: [
            "HOME": "/nonexistent", "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.endpoint + "/v2/credentials/abc",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": directory + "/token",
        ]).credentials()
        #expect(credentials.accessKeyID == "ECSKEY" && credentials.sessionToken == "token-ECSKEY")
        #expect(credentials.expiration == ISO8601DateFormatter().date(from: Self.expiry))

        #expect(throws: ObjectStoreError.self) {
            _ = try ContainerCredentialSource(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/c"])
        }
    }

    @Test("EC2 IMDSv2: session token first, then role and credentials with the token")
    func instanceMetadataV2() async throws {
        let server = try await LoopbackHTTPServer { request, _ in
            if request.method == .PUT, request.path == "/latest/api/token" {
                guard request.headers.first(name: "X-aws-ec2-metadata-token-ttl-seconds") != nil else {
                    return .respond(status: .badRequest)
                }
                return .respond(status: .ok, body: Array("TOKEN-1".utf8))
            }
            guard request.headers.first(name: "X-aws-ec2-metadata-token") == "TOKEN-1" else {
                return .respond(status: .unauthorized)
            }
            switch request.path {
            case "/latest/meta-data/iam/security-credentials/": return .respond(status: .ok, body: Array("my-role\n".utf8))
            case "/latest/meta-data/iam/security-credentials/my-role":
                return .respond(status: .ok, body: Self.credentialsJSON("IMDSKEY"))
            default: return .respond(status: .notFound)
            }
        }
        defer { Task { await server.shutdown() } }
        let credentials = try await CredentialChain(environment: [
            "HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": server.endpoint + "/",
        ]).credentials()
        #expect(credentials.accessKeyID == "IMDSKEY")
        #expect(server.requests.map(\.method) == [.PUT, .GET, .GET])
    }

    @Test("EC2 IMDSv1 fallback when the token call is not supported")
    func instanceMetadataV1() async throws {
        let server = try await LoopbackHTTPServer { request, _ in
            if request.method == .PUT { return .respond(status: .methodNotAllowed) }
            guard request.headers.first(name: "X-aws-ec2-metadata-token") == nil else { return .respond(status: .badRequest) }
            switch request.path {
            case "/latest/meta-data/iam/security-credentials/": return .respond(status: .ok, body: Array("r".utf8))
            case "/latest/meta-data/iam/security-credentials/r": return .respond(status: .ok, body: Self.credentialsJSON("V1KEY"))
            default: return .respond(status: .notFound)
            }
        }
        defer { Task { await server.shutdown() } }
        let source = try #require(InstanceMetadataCredentialSource(environment: [
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": server.endpoint,
        ]))
        #expect(try await source.fetch().accessKeyID == "V1KEY")

        let strict = try #require(InstanceMetadataCredentialSource(environment: [
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": server.endpoint, "AWS_EC2_METADATA_V1_DISABLED": "true",
        ]))
        await #expect(throws: ObjectStoreError.self) { _ = try await strict.fetch() }
        #expect(InstanceMetadataCredentialSource(environment: ["AWS_EC2_METADATA_DISABLED": "true"]) == nil)
    }

    @Test("web identity: AssumeRoleWithWebIdentity with the token file, against a loopback STS")
    func webIdentity() async throws {
        let server = try await LoopbackHTTPServer { request, _ in
            let form = String(decoding: request.body, as: UTF8.self)
            guard request.method == .POST, form.contains("Action=AssumeRoleWithWebIdentity"),
                  form.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbackup"),
                  form.contains("WebIdentityToken=eyJ.token.sig"), form.contains("RoleSessionName=session-1") else {
                return .xml(.badRequest, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                    + "<Message>bad token</Message></Error></ErrorResponse>")
            }
            return .xml(.ok, """
                <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
                  <AssumeRoleWithWebIdentityResult><Credentials>
                    <AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>websecret</SecretAccessKey>
                    <SessionToken>webtoken</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>
                  </Credentials></AssumeRoleWithWebIdentityResult>
                </AssumeRoleWithWebIdentityResponse>
                """)
        }
        defer { Task { await server.shutdown() } }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "eyJ.token.sig\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        // A stray default profile must not shadow the pod's role.
        try "[default]\naws_access_key_id = STRAY\naws_secret_access_key = stray\n"
            .write(toFile: directory + "/credentials", atomically: true, encoding: .utf8)
        let environment = [
            "HOME": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials",
            "AWS_WEB_IDENTITY_TOKEN_FILE": directory + "/token",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/backup", "AWS_ROLE_SESSION_NAME": "session-1",
            "AWS_ENDPOINT_URL_STS": server.endpoint,
        ]
        let credentials = try await CredentialChain(environment: environment).credentials()
        #expect(credentials.accessKeyID == "ASIAWEB" && credentials.sessionToken == "webtoken")

        try "wrong\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await CredentialChain(environment: environment).credentials()
        }
        #expect(error?.serverCode == "InvalidIdentityToken")
        #expect(error?.description.contains("wrong") == false)
    }

    // MARK: refresh

    actor CountingSource: CredentialSource {
        nonisolated let name = "counting"
        let lifetime: TimeInterval
        var fetches = 0

        init(lifetime: TimeInterval) { self.lifetime = lifetime }

        func fetch() async throws -> AWSCredentials {
            fetches += 1
            let number = fetches
            try await Task.sleep(for: .milliseconds(100))
            return AWSCredentials(accessKeyID: "KEY\(number)", secretAccessKey: "s", sessionToken: "t",
                                  expiration: Date().addingTimeInterval(lifetime))
        }
    }

    @Test("temporary credentials are refreshed once, however many tasks ask at the same time")
    func refreshOnceUnderConcurrency() async throws {
        let source = CountingSource(lifetime: 3600)
        let provider = RefreshingCredentialProvider(source: source)
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 { group.addTask { try await provider.credentials().accessKeyID } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(keys == ["KEY1"])
        #expect(await source.fetches == 1)
        _ = try await provider.credentials()
        #expect(await source.fetches == 1, "valid credentials are cached")
    }

    @Test("credentials close to expiry are renewed before use")
    func refreshBeforeExpiry() async throws {
        let source = CountingSource(lifetime: 60)  // inside the 5-minute margin
        let provider = RefreshingCredentialProvider(source: source)
        #expect(try await provider.credentials().accessKeyID == "KEY1")
        let again = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await provider.credentials().accessKeyID } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(again == ["KEY2"])
        #expect(await source.fetches == 2)
    }
}
