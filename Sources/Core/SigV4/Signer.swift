import Crypto
import Foundation

/// Signs requests with AWS Signature Version 4, in the `Authorization` header (`sign`) or in the
/// query string (`presign`). Pure: no I/O, and the signing time is always passed in.
public struct SigV4Signer: Sendable {
    public typealias URIEncoding = SigV4URIMode

    public struct Options: Sendable, Hashable {
        /// `.s3` (the default) signs the wire path as it is; `.standard` is what other services use.
        public var uriEncoding: URIEncoding
        /// With `.standard` only: resolve `.`, `..` and `//` in the path before encoding it.
        public var normalizeURIPath: Bool
        /// Send and sign `x-amz-content-sha256`, which S3 requires for header-signed requests.
        public var addContentSHA256Header: Bool
        /// Leave `X-Amz-Security-Token` out of the signature and add it afterwards. A few services
        /// (IoT's MQTT over WebSocket, for example) want this; S3 and the rest want the token signed.
        public var omitSessionTokenFromSignature: Bool

        public init(
            uriEncoding: URIEncoding = .s3,
            normalizeURIPath: Bool = true,
            addContentSHA256Header: Bool = true,
            omitSessionTokenFromSignature: Bool = false
        ) {
            self.uriEncoding = uriEncoding
            self.normalizeURIPath = normalizeURIPath
            self.addContentSHA256Header = addContentSHA256Header
            self.omitSessionTokenFromSignature = omitSessionTokenFromSignature
        }

        /// What S3 expects: the wire path unchanged, `x-amz-content-sha256` sent and signed.
        public static var s3: Options { Options() }
        /// What the other AWS services (and AWS's generic SigV4 test suite) expect.
        public static var standard: Options { Options(uriEncoding: .standard, addContentSHA256Header: false) }
    }

    public static let algorithm = "AWS4-HMAC-SHA256"
    /// S3 refuses presigned URLs valid for longer than 7 days.
    public static let maximumPresignExpiry = 604_800

    public var credentials: AWSCredentials
    public var region: String
    public var service: String
    public var options: Options

    public init(credentials: AWSCredentials, region: String, service: String = "s3", options: Options = .s3) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.options = options
    }

    // MARK: Header signing

    /// Returns `request` with `X-Amz-Date`, `X-Amz-Security-Token` (when the credentials have one),
    /// `x-amz-content-sha256` (when enabled) and `Authorization` set. Stale copies of these headers
    /// are replaced, so re-signing a retried request is safe.
    public func sign(_ request: SigV4Request, payload: PayloadHash, date: Date) -> SigV4Request {
        signWithDetails(request, payload: payload, date: date).request
    }

    /// `sign`, also returning each intermediate step (for tests and for debugging a
    /// `SignatureDoesNotMatch`, whose response carries the server's canonical request).
    public func signWithDetails(_ request: SigV4Request, payload: PayloadHash, date: Date) -> SigV4SignedRequest {
        let time = SigV4Timestamp(date)
        var replaced: Set<String> = ["authorization", "x-amz-date", "x-amz-security-token"]
        if options.addContentSHA256Header { replaced.insert("x-amz-content-sha256") }
        var signed = request
        signed.headers.removeAll { replaced.contains($0.name.lowercased()) }

        signed.headers.append(("X-Amz-Date", time.amzDate))
        if let token = credentials.sessionToken, !options.omitSessionTokenFromSignature {
            signed.headers.append(("X-Amz-Security-Token", token))
        }
        if options.addContentSHA256Header {
            signed.headers.append(("x-amz-content-sha256", payload.headerValue))
        }

        let canonical = canonicalRequest(for: signed, payload: payload)
        let toSign = stringToSign(canonicalRequest: canonical.text, date: date)
        let signature = self.signature(stringToSign: toSign, date: date)

        if let token = credentials.sessionToken, options.omitSessionTokenFromSignature {
            signed.headers.append(("X-Amz-Security-Token", token))
        }
        signed.headers.append((
            "Authorization",
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(date: date)), "
                + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        ))
        return SigV4SignedRequest(
            request: signed, canonicalRequest: canonical.text, stringToSign: toSign, signature: signature,
            signedHeaders: canonical.signedHeaders)
    }

    // MARK: Query signing

    /// Returns `request` with the signature in its query (`X-Amz-Algorithm`, `-Credential`, `-Date`,
    /// `-Expires`, `-SignedHeaders`, `-Security-Token`, `-Signature`), ready for `urlString(scheme:)`.
    /// Every header in `request.headers` is signed and must be sent with the URL.
    /// - Parameter expires: validity in seconds, 1...604800 (7 days).
    public func presign(
        _ request: SigV4Request, expires: Int, payload: PayloadHash = .unsigned, date: Date
    ) throws(SigV4Error) -> SigV4Request {
        try presignWithDetails(request, expires: expires, payload: payload, date: date).request
    }

    public func presignWithDetails(
        _ request: SigV4Request, expires: Int, payload: PayloadHash = .unsigned, date: Date
    ) throws(SigV4Error) -> SigV4SignedRequest {
        guard (1...Self.maximumPresignExpiry).contains(expires) else { throw .expiresOutOfRange(expires) }
        let time = SigV4Timestamp(date)
        var signed = request
        // Drop a previous presignature so that presigning twice does not sign the old one.
        signed.query.removeAll { Self.presignParameters.contains($0.name) }

        let signedHeaders = Canonical.headers(host: request.host, headers: request.headers).signed
        signed.query += [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(credentialScope(date: date))"),
            ("X-Amz-Date", time.amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", signedHeaders),
        ]
        if let token = credentials.sessionToken, !options.omitSessionTokenFromSignature {
            signed.query.append(("X-Amz-Security-Token", token))
        }

        let canonical = canonicalRequest(for: signed, payload: payload)
        let toSign = stringToSign(canonicalRequest: canonical.text, date: date)
        let signature = self.signature(stringToSign: toSign, date: date)

        if let token = credentials.sessionToken, options.omitSessionTokenFromSignature {
            signed.query.append(("X-Amz-Security-Token", token))
        }
        signed.query.append(("X-Amz-Signature", signature))
        return SigV4SignedRequest(
            request: signed, canonicalRequest: canonical.text, stringToSign: toSign, signature: signature,
            signedHeaders: canonical.signedHeaders)
    }

    private static let presignParameters: Set<String> = [
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
        "X-Amz-Security-Token", "X-Amz-Signature",
    ]

    // MARK: The steps, public so that each can be checked on its own

    /// Task 1: the canonical request of `request` exactly as given (nothing is added to it).
    public func canonicalRequest(for request: SigV4Request, payload: PayloadHash) -> SigV4CanonicalRequest {
        Canonical.request(request, payload: payload, mode: options.uriEncoding, normalize: options.normalizeURIPath)
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    public func credentialScope(date: Date) -> String {
        "\(SigV4Timestamp(date).dateStamp)/\(region)/\(service)/aws4_request"
    }

    /// Task 2: algorithm, time, scope and the canonical request's hash, one per line.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        [Self.algorithm, SigV4Timestamp(date).amzDate, credentialScope(date: date), SHA256Digests.hex(canonicalRequest)]
            .joined(separator: "\n")
    }

    /// Task 3a: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    /// It only depends on the day, so a caller signing many requests may keep it for that day.
    public func signingKey(date: Date) -> SigV4SigningKey {
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [SigV4Timestamp(date).dateStamp, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return SigV4SigningKey(key: key)
    }

    /// Task 3b: lower-case hex HMAC-SHA256 of the string to sign under the day's signing key.
    public func signature(stringToSign: String, date: Date) -> String {
        signingKey(date: date).signature(for: stringToSign)
    }
}

/// A signed request together with the intermediate values that produced its signature.
public struct SigV4SignedRequest: Sendable {
    public let request: SigV4Request
    public let canonicalRequest: String
    public let stringToSign: String
    public let signature: String
    public let signedHeaders: String
}

/// The derived key for one day, region and service. It grants signing power for that scope,
/// so it is never printed.
public struct SigV4SigningKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    let key: SymmetricKey

    /// The raw 32 bytes, for comparison with published derivation examples.
    public var bytes: [UInt8] { key.withUnsafeBytes { Array($0) } }

    public func signature(for stringToSign: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    public var description: String { "SigV4SigningKey(<redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
