import Foundation
import SigV4

/// Supplies AWS credentials for signing. Implementations refresh temporary credentials themselves.
public protocol CredentialProvider: Sendable {
    func credentials() async throws -> AWSCredentials
    /// Drops cached credentials, for when the server answered `ExpiredToken` before the expected expiry.
    func invalidate() async
}

extension CredentialProvider {
    public func invalidate() async {}
}

/// Fixed credentials (from configuration, or in tests).
public struct StaticCredentialProvider: CredentialProvider {
    public let value: AWSCredentials
    public init(_ credentials: AWSCredentials) { self.value = credentials }
    public func credentials() async throws -> AWSCredentials { value }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optional `AWS_SESSION_TOKEN`.
public enum EnvironmentCredentials {
    /// nil when the variables are absent; throws when only one half of the key pair is set.
    public static func read(from environment: [String: String]) throws -> AWSCredentials? {
        let accessKey = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (accessKey, secret) {
        case (nil, nil):
            return nil
        case (let accessKey?, let secret?):
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: accessKey, secretAccessKey: secret, sessionToken: token)
        case (nil, _):
            throw ObjectStoreError(
                .configuration, operation: "load credentials", location: "environment",
                message: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (_, nil):
            throw ObjectStoreError(
                .configuration, operation: "load credentials", location: "environment",
                message: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        }
    }
}

/// Where temporary credentials come from (a metadata endpoint, STS); wrapped by ``RefreshingCredentialProvider``.
public protocol CredentialSource: Sendable {
    /// Names the source in errors, e.g. `EC2 instance metadata`.
    var name: String { get }
    func fetch() async throws -> AWSCredentials
}

/// Caches credentials from a source and fetches new ones shortly before they expire. However many tasks ask at
/// once, one fetch runs and all of them get its result.
public actor RefreshingCredentialProvider: CredentialProvider {
    private let source: any CredentialSource
    /// Credentials are renewed this long before they expire, so a request signed now still works when it lands.
    private let refreshMargin: Duration
    private let now: @Sendable () -> Date
    private var cached: AWSCredentials?
    private var inFlight: Task<AWSCredentials, any Error>?
    /// How many times the source was asked (for tests and metrics).
    public private(set) var fetchCount = 0

    public init(source: any CredentialSource, refreshMargin: Duration = .seconds(300),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.source = source
        self.refreshMargin = refreshMargin
        self.now = now
    }

    public func credentials() async throws -> AWSCredentials {
        if let cached, !needsRefresh(cached) { return cached }
        let task: Task<AWSCredentials, any Error>
        if let inFlight {
            task = inFlight
        } else {
            let source = self.source
            task = Task { try await source.fetch() }
            inFlight = task
            fetchCount += 1
        }
        do {
            let fresh = try await task.value
            if inFlight == task {
                cached = fresh
                inFlight = nil
            }
            return fresh
        } catch {
            if inFlight == task { inFlight = nil }
            // A failed refresh must not stop uploads while the old credentials still work.
            if let cached, let expiration = cached.expiration, expiration > now() { return cached }
            throw error
        }
    }

    public func invalidate() { cached = nil }

    private func needsRefresh(_ credentials: AWSCredentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        let margin = Double(refreshMargin.components.seconds) + Double(refreshMargin.components.attoseconds) / 1e18
        return expiration.timeIntervalSince(now()) <= margin
    }
}

/// The JSON document that ECS and EC2 metadata endpoints return.
struct MetadataCredentialsDocument: Decodable {
    var AccessKeyId: String
    var SecretAccessKey: String
    var Token: String?
    var Expiration: String?
    var Code: String?
    var Message: String?

    func credentials(source: String) throws -> AWSCredentials {
        if let code = Code, code != "Success" {
            throw ObjectStoreError(
                .credentialsUnavailable, operation: "load credentials", location: source,
                message: "the endpoint answered \(code)\(Message.map { ": \($0)" } ?? "")")
        }
        var expiration: Date?
        if let text = Expiration {
            guard let date = S3Dates.parseISO8601(text) else {
                throw ObjectStoreError(
                    .protocolViolation, operation: "load credentials", location: source,
                    message: "the expiration is not an ISO 8601 date")
            }
            expiration = date
        }
        return AWSCredentials(accessKeyID: AccessKeyId, secretAccessKey: SecretAccessKey, sessionToken: Token,
                              expiration: expiration)
    }

    static func decode(_ data: Data, source: String) throws -> AWSCredentials {
        let document: MetadataCredentialsDocument
        do {
            document = try JSONDecoder().decode(MetadataCredentialsDocument.self, from: data)
        } catch {
            // The decoder's message could quote the document, which holds the secret: say only what is missing.
            throw ObjectStoreError(
                .protocolViolation, operation: "load credentials", location: source,
                message: "the answer is not a credentials document (AccessKeyId, SecretAccessKey, Token, Expiration)")
        }
        return try document.credentials(source: source)
    }
}
