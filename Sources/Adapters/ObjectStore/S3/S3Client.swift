import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SigV4
import PipelineCore

/// Signs, sends and retries S3 requests for one bucket, and turns error answers into ``ObjectStoreError``.
struct S3Client: Sendable {
    let bucket: String
    let endpoint: S3Endpoint
    let configuration: S3Configuration
    let credentials: any CredentialProvider
    let transport: any HTTPTransport
    let logger: Logger
    /// `--bwlimit` and `--window`; nil sends at full speed, at any time.
    var throttle: TransferThrottle? = nil

    struct Request: Sendable {
        var method: HTTPMethod
        /// The full key (store prefix included); nil for bucket-level requests.
        var key: String?
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        /// Kept in memory so that a retry can send it again.
        var body: ByteBuffer?
        /// SHA-256 of `body` when the caller already has it (it is then signed instead of recomputed).
        var bodySHA256: SHA256Digest?
        /// Names the request in errors and logs (`PUT`, `UploadPart 7`, …).
        var operation: String
        /// A new object or part transfer (a PUT of data, an UploadPart, a GET of an object): it waits for a
        /// `--window` to be open. Its retries do not: a transfer under way is finished.
        var startsTransfer = false
    }

    func location(_ key: String?) -> String { "s3://\(bucket)/\(key ?? "")" }

    /// Sends `request` until it succeeds or fails for good, then hands the successful (2xx) response to `handle`.
    /// A transient error thrown by `handle` (a connection reset while reading the body, a 200 answer that holds an
    /// `<Error>`) retries the whole request too.
    func perform<Result: Sendable>(
        _ request: Request, handle: (HTTPClientResponse) async throws -> Result
    ) async throws -> Result {
        var attempt = 0
        var refreshedCredentials = false
        if request.startsTransfer, let throttle {
            do {
                try await throttle.waitForWindow()
            } catch {
                throw ObjectStoreError(.cancelled, operation: request.operation, location: location(request.key),
                                       message: "cancelled while waiting for a transfer window")
            }
        }
        while true {
            attempt += 1
            do {
                try Task.checkCancellation()
                let response = try await send(request)
                if (200..<300).contains(response.status.code) {
                    return try await handle(response)
                }
                throw try await errorFromResponse(response, request: request)
            } catch {
                let failure = classify(error, request: request)
                if failure.kind == .invalidCredentials, failure.serverCode == "ExpiredToken" || failure.serverCode
                    == "TokenRefreshRequired", !refreshedCredentials {
                    // Temporary credentials ran out before their announced expiry: fetch new ones, once.
                    refreshedCredentials = true
                    await credentials.invalidate()
                    continue
                }
                guard failure.isRetryable, attempt < configuration.retry.maxAttempts else { throw failure }
                let delay = configuration.retry.delay(beforeAttempt: attempt + 1)
                logger.debug("retrying S3 request", metadata: [
                    "s3.operation": "\(request.operation)", "s3.location": "\(location(request.key))",
                    "s3.attempt": "\(attempt)", "s3.error": "\(failure)",
                ])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw ObjectStoreError(.cancelled, operation: request.operation, location: location(request.key),
                                           message: "cancelled while waiting to retry")
                }
            }
        }
    }

    /// `perform` for answers that are small documents: collects the body (and retries if that fails).
    func performCollecting(_ request: Request, limit: Int = 16 << 20) async throws -> CollectedResponse {
        try await perform(request) { response in
            let collected = try await response.collected(limit: limit)
            // CompleteMultipartUpload, CopyObject and UploadPartCopy can answer 200 and put the error in the body,
            // after whitespace S3 sends to keep the connection open while it works.
            if let root = Self.document(collected.data), root.name == "Error" {
                throw errorFromDocument(root, status: Int(collected.status.code), headers: collected.headers,
                                        request: request)
            }
            return collected
        }
    }

    /// The XML document of a body, leading whitespace allowed; nil when there is none.
    static func document(_ data: Data) -> XMLElementNode? {
        guard let start = data.firstIndex(where: { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }), data[start] == UInt8(ascii: "<") else { return nil }
        return XMLElementNode.parse(data[start...])
    }

    private func send(_ request: Request) async throws -> HTTPClientResponse {
        let credentials: AWSCredentials
        do {
            credentials = try await self.credentials.credentials()
        } catch let error as ObjectStoreError {
            throw error
        } catch {
            throw ObjectStoreError(.credentialsUnavailable, operation: request.operation,
                                   location: location(request.key), message: "\(error)")
        }
        let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "s3", options: .s3)
        let payload: PayloadHash
        if let digest = request.bodySHA256 {
            payload = .sha256Hex(Array(digest).hexString)
        } else if let body = request.body, body.readableBytes > 0 {
            payload = .sha256Hex(Array(SHA256.hash(buffer: body)).hexString)
        } else {
            payload = .emptySHA256
        }
        let unsigned = SigV4Request(
            method: request.method.rawValue, host: endpoint.host, path: path(for: request.key),
            query: request.query, headers: request.headers)
        let signed = signer.sign(unsigned, payload: payload, date: Date())

        var http = HTTPClientRequest(url: "\(endpoint.scheme)://\(endpoint.host)\(signed.pathAndQuery)")
        http.method = request.method
        http.headers.add(name: "Host", value: endpoint.host)
        for header in signed.headers { http.headers.add(name: header.name, value: header.value) }
        let bodySize = request.body?.readableBytes ?? 0
        var minimumThroughput = configuration.minimumThroughputBytesPerSecond
        if let body = request.body {
            if let bucket = throttle?.upload, body.readableBytes > 0 {
                // Metered slice by slice; the slowest scheduled rate, shared by many parts, still counts as progress.
                http.body = .stream(ThrottledBody(body: body, bucket: bucket), length: .known(Int64(body.readableBytes)))
                minimumThroughput = min(minimumThroughput, max(1, (throttle?.lowestRate(uploading: true) ?? 0) / 64))
            } else {
                http.body = .bytes(body)
            }
        } else if [.PUT, .POST].contains(request.method) {
            http.headers.add(name: "Content-Length", value: "0")
        }
        let allowance = Duration.seconds(Double(bodySize) / Double(max(1, minimumThroughput)))
        let deadline = NIODeadline.now() + (configuration.requestTimeout + allowance).timeAmount
        return try await transport.execute(http, deadline: deadline)
    }

    func path(for key: String?) -> String {
        guard let key else { return endpoint.pathPrefix.isEmpty ? "/" : endpoint.pathPrefix }
        return SigV4URIEncoding.s3Path(forKey: key, prefix: endpoint.pathPrefix)
    }

    /// The URL a presigned GET hands out.
    func presignedURL(key: String, expiresIn seconds: Int, date: Date = Date()) async throws -> String {
        try await presigned(key: key, expiresIn: seconds, date: date).url
    }

    /// A presigned GET; it stops working at `date + seconds` or when temporary credentials (an ECS task role's, an
    /// assumed role's) expire, whichever is first, so that is the expiry returned.
    func presigned(key: String, expiresIn seconds: Int, date: Date = Date()) async throws -> PresignedURL {
        let credentials = try await self.credentials.credentials()
        let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "s3", options: .s3)
        let request = SigV4Request(method: "GET", host: endpoint.host, path: path(for: key))
        do {
            let url = try signer.presign(request, expires: seconds, date: date).urlString(scheme: endpoint.scheme)
            let expires = date.addingTimeInterval(TimeInterval(seconds))
            return PresignedURL(url: url, expires: credentials.expiration.map { min($0, expires) } ?? expires)
        } catch {
            throw ObjectStoreError(.invalidArgument, operation: "presign GET", location: location(key),
                                   message: error.message)
        }
    }

    // MARK: Errors

    private func errorFromResponse(_ response: HTTPClientResponse, request: Request) async throws -> ObjectStoreError {
        // Error documents are small; anything past 64 KiB is not an S3 error body and is dropped.
        let body = (try? await response.body.collect(upTo: 64 << 10)) ?? ByteBuffer()
        if body.readableBytes > 0, let root = XMLElementNode.parse(Data(body.readableBytesView)) {
            return errorFromDocument(root, status: Int(response.status.code), headers: response.headers,
                                     request: request)
        }
        // HEAD answers and some proxies carry no document: describe the status.
        let status = Int(response.status.code)
        let code: String? = switch status {
        case 301, 307: "PermanentRedirect"
        case 400: "BadRequest"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 412: "PreconditionFailed"
        case 416: "InvalidRange"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        default: nil
        }
        let message = switch status {
        case 403: "access denied (no error document: check the credentials, the region and the bucket policy)"
        case 404: "no such key or bucket"
        case 301, 307: "the bucket is in another region than \(configuration.region)"
        default: response.status.reasonPhrase
        }
        return makeError(code: code, message: message, status: status, requestID: response.headers.first(
            name: "x-amz-request-id"), request: request)
    }

    private func errorFromDocument(_ root: XMLElementNode, status: Int, headers: HTTPHeaders, request: Request)
        -> ObjectStoreError
    {
        let element = root.name == "Error" ? root : (root.child("Error") ?? root)
        let code = element.value("Code")
        var message = element.value("Message") ?? HTTPResponseStatus(statusCode: status).reasonPhrase
        if code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed",
           let region = element.value("Region") ?? headers.first(name: "x-amz-bucket-region") {
            message += " (the bucket is in \(region); set AWS_REGION)"
        }
        return makeError(code: code, message: message, status: status,
                         requestID: element.value("RequestId") ?? headers.first(name: "x-amz-request-id"),
                         request: request)
    }

    private func makeError(code: String?, message: String, status: Int, requestID: String?, request: Request)
        -> ObjectStoreError
    {
        ObjectStoreError(S3ErrorClassifier.kind(code: code, status: status), operation: request.operation,
                         location: location(request.key), message: message, serverCode: code, httpStatus: status,
                         requestID: requestID)
    }

    /// Maps anything thrown while sending into an ``ObjectStoreError`` whose kind says whether to retry.
    private func classify(_ error: any Error, request: Request) -> ObjectStoreError {
        if let error = error as? ObjectStoreError { return error }
        if error is CancellationError || Task.isCancelled {
            return ObjectStoreError(.cancelled, operation: request.operation, location: location(request.key),
                                    message: "cancelled")
        }
        if let error = error as? HTTPClientError, S3ErrorClassifier.permanentClientErrors.contains(error) {
            return ObjectStoreError(.configuration, operation: request.operation, location: location(request.key),
                                    message: "\(error)")
        }
        // Connection refused or reset, timeouts, TLS and DNS hiccups: worth another try.
        return ObjectStoreError(.transient, operation: request.operation, location: location(request.key),
                                message: "\(error)")
    }
}

enum S3ErrorClassifier {
    /// Codes that another attempt may cure. Digest mismatches are here because the body is resent from memory:
    /// a bit flipped on the way will not flip again.
    static let retryableCodes: Set<String> = [
        "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "TooManyRequests", "Throttling",
        "ThrottlingException", "RequestThrottled", "BadDigest", "XAmzContentSHA256Mismatch", "IncompleteBody",
        "OperationAborted",
    ]

    static func kind(code: String?, status: Int) -> ObjectStoreError.Kind {
        if let code, retryableCodes.contains(code) { return .transient }
        switch code {
        case "NoSuchKey", "NotFound": return .notFound
        case "NoSuchBucket": return .noSuchBucket
        case "AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden": return .accessDenied
        case "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "TokenRefreshRequired",
             "InvalidSecurity", "InvalidClientTokenId", "MissingSecurityHeader", "AuthorizationHeaderMalformed":
            return .invalidCredentials
        case "InvalidObjectState": return .invalidObjectState
        case "NoSuchUpload": return .noSuchUpload
        case "PreconditionFailed": return .preconditionFailed
        case "RestoreAlreadyInProgress", "OperationAbortedConflict": return .conflict
        case "InvalidRange", "InvalidArgument", "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge",
             "InvalidRequest", "KeyTooLongError", "InvalidStorageClass", "MalformedXML", "InvalidDigest":
            return .invalidArgument
        default: break
        }
        if status >= 500 || status == 429 { return .transient }
        if status == 404 { return .notFound }
        if status == 403 { return .accessDenied }
        return .server
    }

    static let permanentClientErrors: [HTTPClientError] = [
        .invalidURL, .emptyHost, .emptyScheme, .redirectLimitReached, .redirectCycleDetected,
        .invalidRedirectConfiguration, .invalidHTTPVersionConfiguration,
    ]
}
