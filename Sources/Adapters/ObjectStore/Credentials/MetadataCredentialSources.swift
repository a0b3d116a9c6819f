import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SigV4
import SystemIO

/// ECS (and EKS Pod Identity) container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on the ECS agent's
/// address, or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` as the `Authorization` header when set.
public struct ContainerCredentialSource: CredentialSource {
    public static let ecsAgentHost = "http://169.254.170.2"
    public let name = "ECS container credentials"
    let url: String
    let environment: [String: String]
    let transport: any HTTPTransport

    /// nil when the environment names no container endpoint.
    public init?(environment: [String: String], httpClient: HTTPClient = ObjectStoreHTTPClient.shared) throws {
        self.init(environment: environment, transport: AsyncHTTPClientTransport(client: httpClient))
        guard !url.isEmpty else { return nil }
        try Self.checkAllowedHost(url)
    }

    init(environment: [String: String], transport: any HTTPTransport) {
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = Self.ecsAgentHost + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else {
            url = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] ?? ""
        }
        self.environment = environment
        self.transport = transport
    }

    /// Plain HTTP only to the link-local agents or loopback, as the AWS SDKs require: the token must not
    /// travel over a network unencrypted.
    static func checkAllowedHost(_ url: String) throws {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw ObjectStoreError(
                .configuration, operation: "load credentials", location: "ECS container credentials",
                message: "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL")
        }
        if components.scheme == "https" { return }
        let allowed = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost", "::1"]
        guard allowed.contains(host) || host.hasPrefix("127.") else {
            throw ObjectStoreError(
                .configuration, operation: "load credentials", location: "ECS container credentials",
                message: "a plain-http AWS_CONTAINER_CREDENTIALS_FULL_URI must point at loopback or the ECS/EKS agent")
        }
    }

    public func fetch() async throws -> AWSCredentials {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        if let token = try await authorizationToken() { request.headers.add(name: "Authorization", value: token) }
        let response = try await transport.getCredentialEndpoint(
            request, timeout: .seconds(5), source: name, service: "the endpoint", requestDescription: "the endpoint")
        return try MetadataCredentialsDocument.decode(response.data, source: name)
    }

    private func authorizationToken() async throws -> String? {
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !file.isEmpty {
            // Re-read on every fetch: EKS rotates the token file.
            guard let text = try? await blocking({ try String(contentsOfFile: file, encoding: .utf8) }) else {
                throw ObjectStoreError(.configuration, operation: "load credentials", location: name,
                                       message: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE cannot be read")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// EC2 instance profile credentials through the instance metadata service: IMDSv2 (a session token from
/// `PUT /latest/api/token`), falling back to IMDSv1 when the token call is not supported (404/405) or times out.
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves the endpoint (tests use loopback); `AWS_EC2_METADATA_DISABLED=true`
/// turns the source off; `AWS_EC2_METADATA_V1_DISABLED=true` forbids the fallback.
public struct InstanceMetadataCredentialSource: CredentialSource {
    public let name = "EC2 instance metadata"
    let endpoint: String
    let allowV1: Bool
    let timeout: TimeAmount
    let transport: any HTTPTransport

    /// nil when `AWS_EC2_METADATA_DISABLED` is true.
    public init?(environment: [String: String], httpClient: HTTPClient = ObjectStoreHTTPClient.shared,
                 timeout: TimeAmount = .seconds(2)) {
        self.init(environment: environment, transport: AsyncHTTPClientTransport(client: httpClient), timeout: timeout)
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" { return nil }
    }

    init(environment: [String: String], transport: any HTTPTransport, timeout: TimeAmount = .seconds(2)) {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "http://169.254.169.254"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.allowV1 = environment["AWS_EC2_METADATA_V1_DISABLED"]?.lowercased() != "true"
        self.timeout = timeout
        self.transport = transport
    }

    public func fetch() async throws -> AWSCredentials {
        let token = try await sessionToken()
        let roleList = try await get("/latest/meta-data/iam/security-credentials/", token: token)
        guard let role = String(buffer: roleList.body).split(whereSeparator: \.isNewline).first.map(String.init),
              !role.isEmpty else {
            throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: name,
                                   message: "the instance has no IAM role attached")
        }
        let document = try await get("/latest/meta-data/iam/security-credentials/\(role)", token: token)
        return try MetadataCredentialsDocument.decode(document.data, source: name)
    }

    /// The IMDSv2 token, or nil to continue with IMDSv1.
    private func sessionToken() async throws -> String? {
        var request = HTTPClientRequest(url: endpoint + "/latest/api/token")
        request.method = .PUT
        request.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        do {
            let response = try await transport.execute(request, deadline: .now() + timeout).collected(limit: 64 << 10)
            switch response.status.code {
            case 200:
                return String(buffer: response.body)
            case 403:
                throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: name,
                                       message: "the metadata service refused a session token (IMDS disabled)")
            case 404, 405:
                if allowV1 { return nil }
                throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: name,
                                       message: "IMDSv2 is not available and AWS_EC2_METADATA_V1_DISABLED is set")
            default:
                throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: name,
                                       message: "the token request answered HTTP \(response.status.code)")
            }
        } catch let error as ObjectStoreError {
            throw error
        } catch where allowV1 && Self.isTimeout(error) {
            return nil
        } catch {
            throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: name,
                                   message: "the metadata service could not be reached: \(error)")
        }
    }

    private func get(_ path: String, token: String?) async throws -> CollectedResponse {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .GET
        if let token { request.headers.add(name: "X-aws-ec2-metadata-token", value: token) }
        return try await transport.getCredentialEndpoint(
            request, timeout: timeout, source: name, service: "the metadata service", requestDescription: "GET \(path)")
    }

    private static func isTimeout(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
    }
}

/// `AssumeRoleWithWebIdentity` with the token in `AWS_WEB_IDENTITY_TOKEN_FILE` (EKS IRSA, GitHub OIDC…) for the
/// role in `AWS_ROLE_ARN`. STS is reached at `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the regional
/// endpoint. The call is unsigned: the web identity token is the proof.
public struct WebIdentityCredentialSource: CredentialSource {
    public let name = "web identity (STS AssumeRoleWithWebIdentity)"
    let tokenFile: String
    let roleARN: String
    let sessionName: String
    let stsEndpoint: String
    let durationSeconds: Int?
    let transport: any HTTPTransport

    /// nil when the environment names no token file and role.
    public init?(environment: [String: String], httpClient: HTTPClient = ObjectStoreHTTPClient.shared) {
        guard let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !tokenFile.isEmpty,
              let roleARN = environment["AWS_ROLE_ARN"], !roleARN.isEmpty else { return nil }
        self.init(tokenFile: tokenFile, roleARN: roleARN, sessionName: environment["AWS_ROLE_SESSION_NAME"],
                  environment: environment, transport: AsyncHTTPClientTransport(client: httpClient))
    }

    init(tokenFile: String, roleARN: String, sessionName: String?, environment: [String: String],
         transport: any HTTPTransport, durationSeconds: Int? = nil) {
        self.tokenFile = tokenFile
        self.roleARN = roleARN
        self.sessionName = sessionName.flatMap { $0.isEmpty ? nil : $0 }
            ?? "personal-backup-\(Int(Date().timeIntervalSince1970))"
        self.stsEndpoint = Self.stsEndpoint(environment: environment)
        self.durationSeconds = durationSeconds
        self.transport = transport
    }

    static func stsEndpoint(environment: [String: String]) -> String {
        if let url = environment["AWS_ENDPOINT_URL_STS"], !url.isEmpty { return url }
        if let url = environment["AWS_ENDPOINT_URL"], !url.isEmpty { return url }
        let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? ""
        return region.isEmpty ? "https://sts.amazonaws.com" : "https://sts.\(region).amazonaws.com"
    }

    public func fetch() async throws -> AWSCredentials {
        // Re-read on every fetch: the platform rotates the token file.
        let tokenFile = self.tokenFile
        guard let token = try? await blocking({ try String(contentsOfFile: tokenFile, encoding: .utf8) })
            .trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ObjectStoreError(.configuration, operation: "load credentials", location: name,
                                   message: "AWS_WEB_IDENTITY_TOKEN_FILE cannot be read or is empty")
        }
        var form: [(String, String)] = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
            ("RoleSessionName", sessionName), ("WebIdentityToken", token),
        ]
        if let durationSeconds { form.append(("DurationSeconds", String(durationSeconds))) }
        let body = form.map { "\($0.0)=\(SigV4URIEncoding.encode($0.1, encodeSlash: true))" }.joined(separator: "&")

        var endpoint = stsEndpoint
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        var request = HTTPClientRequest(url: endpoint + "/")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
        request.body = .bytes(ByteBuffer(string: body))
        let response: CollectedResponse
        do {
            response = try await transport.execute(request, deadline: .now() + .seconds(30)).collected(limit: 1 << 20)
        } catch {
            throw ObjectStoreError(.credentialsUnavailable, operation: "AssumeRoleWithWebIdentity", location: roleARN,
                                   message: "STS could not be reached: \(error)")
        }
        guard let root = XMLElementNode.parse(response.data) else {
            throw ObjectStoreError(.protocolViolation, operation: "AssumeRoleWithWebIdentity", location: roleARN,
                                   message: "STS answered HTTP \(response.status.code) without an XML document")
        }
        guard response.status == .ok else {
            let error = root.child("Error") ?? root
            throw ObjectStoreError(
                .credentialsUnavailable, operation: "AssumeRoleWithWebIdentity", location: roleARN,
                message: error.value("Message") ?? "STS refused the request", serverCode: error.value("Code"),
                httpStatus: Int(response.status.code))
        }
        guard let credentials = root.child("AssumeRoleWithWebIdentityResult")?.child("Credentials"),
              let accessKey = credentials.value("AccessKeyId"), let secret = credentials.value("SecretAccessKey"),
              let sessionToken = credentials.value("SessionToken") else {
            throw ObjectStoreError(.protocolViolation, operation: "AssumeRoleWithWebIdentity", location: roleARN,
                                   message: "the answer holds no credentials")
        }
        let expiration = credentials.value("Expiration").flatMap(S3Dates.parseISO8601)
        return AWSCredentials(accessKeyID: accessKey.trimmingCharacters(in: .whitespacesAndNewlines),
                              secretAccessKey: secret.trimmingCharacters(in: .whitespacesAndNewlines),
                              sessionToken: sessionToken.trimmingCharacters(in: .whitespacesAndNewlines),
                              expiration: expiration)
    }
}

extension HTTPTransport {
    /// Sends a request to a credentials endpoint (ECS agent, instance metadata) and returns its 200 answer;
    /// anything else is `credentialsUnavailable`, naming the source.
    fileprivate func getCredentialEndpoint(
        _ request: HTTPClientRequest, timeout: TimeAmount, source: String, service: String, requestDescription: String
    ) async throws -> CollectedResponse {
        let response: CollectedResponse
        do {
            response = try await execute(request, deadline: .now() + timeout).collected(limit: 1 << 20)
        } catch {
            throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: source,
                                   message: "\(service) could not be reached: \(error)")
        }
        guard response.status == .ok else {
            throw ObjectStoreError(.credentialsUnavailable, operation: "load credentials", location: source,
                                   message: "\(requestDescription) answered HTTP \(response.status.code)")
        }
        return response
    }
}
