import Foundation
import NIOCore

/// How to reach an S3-compatible service.
public struct S3Configuration: Sendable, Hashable {
    public enum AddressingStyle: String, Sendable, Hashable {
        /// `https://endpoint/bucket/key`: what MinIO, moto and most S3-compatible servers expect.
        case path
        /// `https://bucket.endpoint/key`: what AWS recommends. Bucket names with dots fall back to path style
        /// over https, because `a.b.s3.amazonaws.com` does not match the wildcard certificate.
        case virtualHosted
    }

    public var region: String
    /// `scheme://host[:port]` of a custom endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`); nil for AWS.
    public var endpoint: String?
    /// nil picks path style for custom endpoints and virtual-hosted style for AWS.
    public var addressingStyle: AddressingStyle?
    public var retry: RetryPolicy
    /// The deadline of a request without a body; requests with a body get extra time per byte (see below).
    public var requestTimeout: Duration
    /// The slowest upload speed that still counts as progress: a part of N bytes may take
    /// `requestTimeout + N / minimumThroughput`. Stalls are caught sooner by the client's idle timeouts.
    public var minimumThroughputBytesPerSecond: Int

    public init(
        region: String, endpoint: String? = nil, addressingStyle: AddressingStyle? = nil,
        retry: RetryPolicy = RetryPolicy(), requestTimeout: Duration = .seconds(60),
        minimumThroughputBytesPerSecond: Int = 16 << 10
    ) {
        self.region = region
        self.endpoint = endpoint
        self.addressingStyle = addressingStyle
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.minimumThroughputBytesPerSecond = minimumThroughputBytesPerSecond
    }

    /// Region and endpoint from the standard variables: `AWS_REGION`/`AWS_DEFAULT_REGION` (else the profile's
    /// region, else us-east-1), `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; `AWS_S3_ADDRESSING_STYLE`
    /// (`path` or `virtual`) overrides the style.
    public static func fromEnvironment(_ environment: [String: String]) -> S3Configuration {
        let region = SharedConfigFiles.region(environment: environment) ?? "us-east-1"
        let endpoint = [environment["AWS_ENDPOINT_URL_S3"], environment["AWS_ENDPOINT_URL"]]
            .compactMap { $0 }.first { !$0.isEmpty }
        var style: AddressingStyle?
        switch environment["AWS_S3_ADDRESSING_STYLE"]?.lowercased() {
        case "path": style = .path
        case "virtual", "virtualhosted", "virtual-hosted": style = .virtualHosted
        default: style = nil
        }
        return S3Configuration(region: region, endpoint: endpoint, addressingStyle: style)
    }
}

/// Exponential backoff with full jitter: attempt n waits a random time in [0, min(maxDelay, baseDelay × 2ⁿ⁻¹)].
public struct RetryPolicy: Sendable, Hashable {
    /// Tries per request, the first included.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 8, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(20)) {
        precondition(maxAttempts >= 1, "at least one attempt")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// No retries, for tests that want to see the first failure.
    public static let none = RetryPolicy(maxAttempts: 1)

    func delay(beforeAttempt attempt: Int) -> Duration {
        let exponent = min(attempt - 2, 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        let ceilingNanos = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard ceilingNanos > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceilingNanos))
    }
}

/// Where requests for one bucket go, and how keys become URLs.
struct S3Endpoint: Sendable, Hashable {
    let scheme: String
    /// The Host header: host, plus the port when it is not the scheme's default.
    let host: String
    /// Prepended to every object path: `/bucket` in path style, empty in virtual-hosted style.
    let pathPrefix: String

    init(bucket: String, configuration: S3Configuration) throws {
        var scheme = "https"
        var host: String
        var custom = false
        if let endpoint = configuration.endpoint {
            guard let components = URLComponents(string: endpoint), let parsedScheme = components.scheme,
                  ["http", "https"].contains(parsedScheme), let parsedHost = components.host, !parsedHost.isEmpty
            else {
                throw ObjectStoreError(
                    .configuration, operation: "open store", location: "s3://\(bucket)",
                    message: "the S3 endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) must be http(s)://host[:port]")
            }
            scheme = parsedScheme
            host = parsedHost.contains(":") ? "[\(parsedHost)]" : parsedHost
            if let port = components.port, port != (scheme == "https" ? 443 : 80) { host += ":\(port)" }
            custom = true
        } else {
            host = configuration.region == "us-east-1" ? "s3.amazonaws.com" : "s3.\(configuration.region).amazonaws.com"
        }
        // Dotted bucket names break TLS certificate matching in virtual-hosted style.
        let style = configuration.addressingStyle ?? (custom ? .path : .virtualHosted)
        if style == .virtualHosted, !(scheme == "https" && bucket.contains(".")) {
            self.host = "\(bucket).\(host)"
            self.pathPrefix = ""
        } else {
            self.host = host
            self.pathPrefix = "/\(bucket)"
        }
        self.scheme = scheme
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
