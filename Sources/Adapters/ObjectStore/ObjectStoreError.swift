import Foundation

/// The one error type of this module.
///
/// The description is one line that names the operation, the bucket and key and, for S3, the server's error code
/// and message. It never contains credentials, signatures, session tokens or presigned query strings: requests are
/// signed in headers, and only S3's `Code` and `Message` elements are kept from an error body (never its
/// `StringToSign`, `CanonicalRequest` or `SignatureProvided`).
public struct ObjectStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in categories a caller can act on. New cases may be added: switch with a default.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable, Hashable {
            case notFound, noSuchBucket, accessDenied, invalidCredentials, invalidObjectState
            case invalidKey, invalidArgument, preconditionFailed, conflict, sourceChanged
            case sourceUnreadable, noSuchUpload, transient, server, protocolViolation, configuration
            case credentialsUnavailable, localIO, cancelled
        }
        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The object (or the byte range) does not exist.
        public static let notFound = Kind(.notFound)
        public static let noSuchBucket = Kind(.noSuchBucket)
        public static let accessDenied = Kind(.accessDenied)
        /// The access key is unknown, the secret is wrong, or the token expired.
        public static let invalidCredentials = Kind(.invalidCredentials)
        /// The object is archived (GLACIER, DEEP_ARCHIVE) and has no finished restore.
        public static let invalidObjectState = Kind(.invalidObjectState)
        /// The key cannot be stored (empty, too long, or unsafe for a file store).
        public static let invalidKey = Kind(.invalidKey)
        public static let invalidArgument = Kind(.invalidArgument)
        public static let preconditionFailed = Kind(.preconditionFailed)
        /// The request conflicts with the object's state (a restore already running, a key that is a directory).
        public static let conflict = Kind(.conflict)
        /// The bytes read differ from what was announced (length) or recorded (a resumed part's checksum).
        public static let sourceChanged = Kind(.sourceChanged)
        /// The local source could not be read.
        public static let sourceUnreadable = Kind(.sourceUnreadable)
        /// The multipart upload id is unknown (completed, aborted or expired).
        public static let noSuchUpload = Kind(.noSuchUpload)
        /// A network failure, timeout, throttling or 5xx that outlived every retry.
        public static let transient = Kind(.transient)
        /// Any other error answer from the server.
        public static let server = Kind(.server)
        /// The server's answer could not be understood.
        public static let protocolViolation = Kind(.protocolViolation)
        public static let configuration = Kind(.configuration)
        /// No provider in the credential chain could supply credentials.
        public static let credentialsUnavailable = Kind(.credentialsUnavailable)
        /// Reading or writing the local file store failed.
        public static let localIO = Kind(.localIO)
        public static let cancelled = Kind(.cancelled)

        public var description: String { base.rawValue }
    }

    public var kind: Kind
    /// What was being done, for example `PUT`, `UploadPart 3`, `CompleteMultipartUpload`, `read source`.
    public var operation: String
    /// `s3://bucket/key`, `file:///root/key` or a credential source; never a presigned URL.
    public var location: String
    /// S3's error code (`AccessDenied`, `SlowDown`…) when the server sent one.
    public var serverCode: String?
    public var httpStatus: Int?
    /// A short explanation; for S3 errors the server's `Message` element.
    public var message: String
    public var requestID: String?

    public init(
        _ kind: Kind, operation: String, location: String, message: String,
        serverCode: String? = nil, httpStatus: Int? = nil, requestID: String? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.location = location
        self.message = Self.sanitized(message)
        self.serverCode = serverCode
        self.httpStatus = httpStatus
        self.requestID = requestID
    }

    public var description: String {
        var text = "\(operation) \(location) failed: "
        if let serverCode { text += serverCode }
        if let httpStatus { text += serverCode == nil ? "HTTP \(httpStatus)" : " (HTTP \(httpStatus))" }
        if serverCode != nil || httpStatus != nil { text += ": " }
        text += message
        if let requestID { text += " [request id \(requestID)]" }
        return text
    }

    /// Whether repeating the same request later may succeed.
    public var isRetryable: Bool { kind == .transient }

    /// One line, bounded length, and nothing that looks like a query string with a signature in it.
    static func sanitized(_ message: String) -> String {
        var line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        if let range = line.range(of: "X-Amz-Signature", options: .caseInsensitive) {
            line = String(line[..<range.lowerBound]) + "…"
        }
        if line.count > 300 { line = String(line.prefix(300)) + "…" }
        return line
    }
}
