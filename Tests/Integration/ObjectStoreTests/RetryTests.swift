import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SigV4
import Testing
import SystemIO
@testable import ObjectStore

/// Retries and error handling against a loopback server that fails on purpose.
@Suite("retries against a failing loopback server")
struct RetryTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "loopback-secret-123")

    func store(_ server: LoopbackHTTPServer, attempts: Int = 5) throws -> S3ObjectStore {
        try S3ObjectStore(
            bucket: "bucket", configuration: S3Configuration(
                region: "us-east-1", endpoint: server.endpoint,
                retry: RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(5), maxDelay: .milliseconds(50))),
            credentials: StaticCredentialProvider(Self.credentials))
    }

    /// What S3 checks on a PUT: the checksum header and the signed payload hash both match the body.
    static func checkPut(_ request: RecordedRequest) -> ScriptedResponse? {
        let digest = SHA256.hash(data: request.body)
        let base64 = Data(digest).base64EncodedString()
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        guard request.headers.first(name: "x-amz-checksum-sha256") == base64 else {
            return .s3Error(.badRequest, code: "BadDigest", message: "checksum header does not match the body")
        }
        guard request.headers.first(name: "x-amz-content-sha256") == hex else {
            return .s3Error(.badRequest, code: "XAmzContentSHA256Mismatch", message: "payload hash mismatch")
        }
        guard request.headers.first(name: "Authorization")?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            == true else {
            return .s3Error(.forbidden, code: "AccessDenied", message: "unsigned")
        }
        return nil
    }

    /// S3's answer to a PUT that carried x-amz-checksum-sha256 echoes it: the client's proof the body was stored.
    static func checksumEcho(_ request: RecordedRequest) -> (String, String) {
        ("x-amz-checksum-sha256", request.headers.first(name: "x-amz-checksum-sha256") ?? "")
    }

    @Test("5xx, SlowDown, RequestTimeout and connection resets are retried", arguments: [
        ScriptedResponse.s3Error(.serviceUnavailable, code: "SlowDown", message: "Please reduce your request rate."),
        .s3Error(.internalServerError, code: "InternalError", message: "We encountered an internal error."),
        .s3Error(.badRequest, code: "RequestTimeout", message: "Your socket connection was not read from."),
        .respond(status: .badGateway),
        .closeConnection,
    ])
    func transientFailuresAreRetried(failure: ScriptedResponse) async throws {
        let server = try await LoopbackHTTPServer { request, index in
            if let problem = Self.checkPut(request) { return problem }
            return index < 3 ? failure : .respond(status: .ok, headers: [("ETag", "\"abc\""), Self.checksumEcho(request)])
        }
        defer { Task { await server.shutdown() } }
        let bytes = testBytes(70_000)
        let result = try await store(server).put("dir/obj", from: .bytes(bytes))
        #expect(result.sha256 == sha256Hex(bytes))
        #expect(result.etag == "\"abc\"")
        #expect(server.requests.count == 4)
        #expect(server.requests.allSatisfy { $0.body == bytes && $0.uri == "/bucket/dir/obj" })
    }

    @Test("retries are bounded")
    func retriesAreBounded() async throws {
        let server = try await LoopbackHTTPServer { _, _ in
            .s3Error(.serviceUnavailable, code: "SlowDown", message: "slow down")
        }
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store(server, attempts: 4).put("k", bytes: [1, 2, 3])
        }
        #expect(error?.kind == .transient)
        #expect(error?.serverCode == "SlowDown")
        #expect(server.requests.count == 4)
    }

    @Test("errors that cannot succeed fail at once and name bucket, key and code", arguments: [
        ("AccessDenied", HTTPResponseStatus.forbidden, ObjectStoreError.Kind.accessDenied),
        ("SignatureDoesNotMatch", .forbidden, .invalidCredentials),
        ("InvalidAccessKeyId", .forbidden, .invalidCredentials),
        ("NoSuchBucket", .notFound, .noSuchBucket),
        ("InvalidObjectState", .forbidden, .invalidObjectState),
    ])
    func permanentErrorsAreNotRetried(code: String, status: HTTPResponseStatus, kind: ObjectStoreError.Kind)
        async throws
    {
        let server = try await LoopbackHTTPServer { _, _ in
            // Real S3 error bodies echo the string to sign and the signature: they must not reach the message.
            .xml(status, "<Error><Code>\(code)</Code><Message>Refused by test.</Message>"
                + "<StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign>"
                + "<SignatureProvided>deadbeef</SignatureProvided><RequestId>R1</RequestId></Error>")
        }
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store(server).put("photos/2008/img 1.jpg", bytes: [1])
        }
        #expect(server.requests.count == 1)
        #expect(error?.kind == kind)
        let text = try #require(error?.description)
        #expect(text.contains("s3://bucket/photos/2008/img 1.jpg"))
        #expect(text.contains(code))
        #expect(text.contains("Refused by test."))
        #expect(!text.contains("deadbeef") && !text.contains("StringToSign") && !text.contains(Self.credentials.secretAccessKey))
    }

    @Test("a download cut off mid-way resumes from the first missing byte")
    func downloadResumes() async throws {
        let bytes = testBytes(300_000, seed: 4)
        let server = try await LoopbackHTTPServer { request, index in
            let headers = [("ETag", "\"v1\""), ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")]
            if index == 0 {
                return .truncatedBody(status: .ok, headers: headers, body: bytes, sentBytes: 100_000)
            }
            guard request.headers.first(name: "If-Match") == "\"v1\"",
                  let range = request.headers.first(name: "Range"), range.hasPrefix("bytes=") else {
                return .s3Error(.badRequest, code: "InvalidRequest", message: "expected a conditional range")
            }
            let bounds = range.dropFirst("bytes=".count).split(separator: "-").compactMap { Int($0) }
            let slice = Array(bytes[bounds[0]...bounds[1]])
            return .respond(status: .partialContent,
                            headers: headers + [("Content-Range", "bytes \(bounds[0])-\(bounds[1])/\(bytes.count)")],
                            body: slice)
        }
        defer { Task { await server.shutdown() } }
        let received = try await store(server).getBytes("movie.mkv", limit: 1 << 20)
        #expect(received == bytes)
        #expect(server.requests.count == 2)
    }

    @Test("CompleteMultipartUpload that answers 200 with an <Error> inside is retried")
    func completeWithErrorBodyIsRetried() async throws {
        let completes = LockedBox(0)
        let parts = LockedBox([Int: String]())
        let server = try await LoopbackHTTPServer { request, _ in
            if request.method == .POST, request.query == "uploads=" {
                return .xml(.ok, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>")
            }
            if request.method == .PUT {
                if let problem = Self.checkPut(request) { return problem }
                let number = request.query.split(separator: "&").first { $0.hasPrefix("partNumber=") }.flatMap { Int($0.dropFirst("partNumber=".count)) } ?? 0
                parts.withLock { $0[number] = request.headers.first(name: "x-amz-checksum-sha256") ?? "" }
                return .respond(status: .ok, headers: [("ETag", "\"part\""), Self.checksumEcho(request)])
            }
            if request.method == .HEAD {
                // The completed object, as S3 reports it: its size and the composite checksum of its parts.
                var hasher = SHA256()
                for (_, part) in parts.value.sorted(by: { $0.key < $1.key }) { hasher.update(data: Data(base64Encoded: part) ?? Data()) }
                let composite = Data(hasher.finalize()).base64EncodedString() + "-\(parts.value.count)"
                return .respond(status: .ok, headers: [("Content-Length", "\((5 << 20) + 10)"), ("ETag", "\"whole-2\""),
                                                      ("x-amz-checksum-sha256", composite)])
            }
            if request.method == .POST, request.query.hasPrefix("uploadId=") {
                let body = String(decoding: request.body, as: UTF8.self)
                guard body.contains("<ChecksumSHA256>"), body.contains("<PartNumber>2</PartNumber>") else {
                    return .s3Error(.badRequest, code: "InvalidPart", message: "parts missing")
                }
                let count = completes.withLock { value in
                    value += 1
                    return value
                }
                if count == 1 {
                    return .xml(.ok, "<Error><Code>InternalError</Code><Message>try again</Message></Error>")
                }
                return .xml(.ok, "<CompleteMultipartUploadResult><ETag>\"whole-2\"</ETag></CompleteMultipartUploadResult>")
            }
            return .s3Error(.badRequest, code: "InvalidRequest", message: "unexpected \(request.method) \(request.uri)")
        }
        defer { Task { await server.shutdown() } }
        let bytes = testBytes(5 << 20 + 10)
        let result = try await store(server).put(
            "big", from: .bytes(bytes), options: PutOptions(multipartThreshold: 0, partSize: 5 << 20))
        #expect(result.etag == "\"whole-2\"")
        #expect(result.partCount == 2)
        #expect(completes.value == 2)
    }
}
