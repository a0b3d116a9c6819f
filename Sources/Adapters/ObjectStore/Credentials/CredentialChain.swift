import AsyncHTTPClient
import Foundation
import SigV4
import SystemIO

/// The standard AWS credential chain, read from an injected environment (tests drive it with a dictionary):
///
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 2. the profile `AWS_PROFILE` names (an error if it does not exist or holds no credentials), from
///    `~/.aws/credentials` and `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`);
/// 3. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`) through STS, before the default profile as
///    in botocore, so a pod's role is not shadowed by a stray `~/.aws/credentials`;
///    then the `default` profile when it holds credentials;
/// 4. ECS container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`);
/// 5. EC2 instance metadata (IMDSv2, IMDSv1 fallback) unless `AWS_EC2_METADATA_DISABLED=true`.
///
/// The first configured source is chosen on first use and kept; temporary credentials are refreshed five minutes
/// before they expire, once, however many uploads ask at the same time.
public actor CredentialChain: CredentialProvider {
    private let environment: [String: String]
    private let httpClient: HTTPClient
    private var chosen: (any CredentialProvider)?
    private var resolving: Task<any CredentialProvider, any Error>?

    public init(environment: [String: String], httpClient: HTTPClient = ObjectStoreHTTPClient.shared) {
        self.environment = environment
        self.httpClient = httpClient
    }

    public func credentials() async throws -> AWSCredentials {
        try await provider().credentials()
    }

    public func invalidate() async {
        await chosen?.invalidate()
    }

    /// The provider the chain settled on (resolving it on first use).
    public func provider() async throws -> any CredentialProvider {
        if let chosen { return chosen }
        if let resolving { return try await resolving.value }
        let environment = self.environment
        let httpClient = self.httpClient
        let task = Task { try await Self.resolve(environment: environment, httpClient: httpClient) }
        resolving = task
        defer { resolving = nil }
        let provider = try await task.value
        chosen = provider
        return provider
    }

    /// Reads the shared files on the thread pool, like every file here.
    private static func profileProvider(_ profile: String, environment: [String: String], httpClient: HTTPClient)
        async throws -> (any CredentialProvider)?
    {
        try await blocking {
            try ProfileCredentials.provider(profile: profile, environment: environment, httpClient: httpClient)
        }
    }

    static func resolve(environment: [String: String], httpClient: HTTPClient) async throws -> any CredentialProvider {
        if let credentials = try EnvironmentCredentials.read(from: environment) {
            return StaticCredentialProvider(credentials)
        }
        if let profile = environment["AWS_PROFILE"], !profile.isEmpty {
            guard let provider = try await profileProvider(profile, environment: environment, httpClient: httpClient)
            else {
                throw ObjectStoreError(
                    .configuration, operation: "load credentials", location: "AWS profile \(profile)",
                    message: "AWS_PROFILE names a profile with no credentials in the AWS credentials or config file")
            }
            return provider
        }
        if let source = WebIdentityCredentialSource(environment: environment, httpClient: httpClient) {
            return RefreshingCredentialProvider(source: source)
        }
        if let provider = try await profileProvider("default", environment: environment, httpClient: httpClient) {
            return provider
        }
        if let source = try ContainerCredentialSource(environment: environment, httpClient: httpClient) {
            return RefreshingCredentialProvider(source: source)
        }
        if let source = InstanceMetadataCredentialSource(environment: environment, httpClient: httpClient) {
            // Only the last resort needs probing: on a machine that is not EC2 it fails fast (2 s timeout), and
            // the error below names everything that was looked at.
            let provider = RefreshingCredentialProvider(source: source)
            do {
                _ = try await provider.credentials()
                return provider
            } catch {
                throw ObjectStoreError(
                    .credentialsUnavailable, operation: "load credentials", location: "the AWS credential chain",
                    message: "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                        + "AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or run with an ECS task role or an EC2 "
                        + "instance profile (instance metadata: \((error as? ObjectStoreError)?.message ?? "\(error)"))")
            }
        }
        throw ObjectStoreError(
            .credentialsUnavailable, operation: "load credentials", location: "the AWS credential chain",
            message: "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                + "AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or run with an ECS task role "
                + "(EC2 instance metadata is disabled by AWS_EC2_METADATA_DISABLED)")
    }
}
