import Foundation
import NIOHTTP1
import PipelineCore
import Testing
@testable import ObjectStore

@Suite("parsing S3 answers")
struct ParsingTests {
    @Test("x-amz-restore and storage class give the restore state")
    func restoreHeader() {
        #expect(S3ObjectStore.restoreState(storageClassName: "STANDARD", header: nil) == .notArchived)
        #expect(S3ObjectStore.restoreState(storageClassName: "DEEP_ARCHIVE", header: nil) == .archived)
        #expect(S3ObjectStore.restoreState(storageClassName: "GLACIER", header: "ongoing-request=\"true\"") == .inProgress)
        let restored = S3ObjectStore.restoreState(
            storageClassName: "DEEP_ARCHIVE",
            header: "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")
        #expect(restored == .restored(until: Date(timeIntervalSince1970: 1_356_048_000)))
        #expect(restored.isReadable)
    }

    @Test("object info from HEAD headers")
    func headHeaders() {
        let headers = HTTPHeaders([
            ("Content-Length", "1234"), ("ETag", "\"abc\""), ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("x-amz-storage-class", "DEEP_ARCHIVE"), ("x-amz-meta-Label", "DVD 12"), ("Content-Type", "video/mp4"),
            ("x-amz-checksum-sha256", "q1w2e3-3"),
        ])
        let info = S3ObjectStore.objectInfo(key: "k", headers: headers)
        #expect(info.size == 1234 && info.etag == "\"abc\"" && info.storageClass == .deepArchive)
        #expect(info.metadata == ["label": "DVD 12"] && info.contentType == "video/mp4")
        #expect(info.lastModified == Date(timeIntervalSince1970: 1_445_412_480))
        #expect(info.restore == .archived && info.checksumSHA256 == "q1w2e3-3")
        #expect(S3ObjectStore.totalSize(contentRange: "bytes 10-19/1000") == 1000)
    }

    @Test("error classification: what is retried and what fails at once")
    func classification() {
        for code in ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "BadDigest"] {
            #expect(S3ErrorClassifier.kind(code: code, status: 400) == .transient, "\(code)")
        }
        #expect(S3ErrorClassifier.kind(code: nil, status: 503) == .transient)
        #expect(S3ErrorClassifier.kind(code: "AccessDenied", status: 403) == .accessDenied)
        #expect(S3ErrorClassifier.kind(code: "SignatureDoesNotMatch", status: 403) == .invalidCredentials)
        #expect(S3ErrorClassifier.kind(code: "NoSuchBucket", status: 404) == .noSuchBucket)
        #expect(S3ErrorClassifier.kind(code: "InvalidObjectState", status: 403) == .invalidObjectState)
        #expect(S3ErrorClassifier.kind(code: "SomethingNew", status: 400) == .server)
    }

    @Test("error messages are one bounded line without presigned query strings")
    func sanitizedMessages() {
        let error = ObjectStoreError(
            .server, operation: "GET", location: "s3://b/k",
            message: "line one\nline two https://x/?X-Amz-Signature=abcdef&X-Amz-Credential=AKID" + String(repeating: "x", count: 500))
        #expect(!error.description.contains("\n"))
        #expect(!error.description.contains("abcdef"))
        #expect(error.description.count < 400)
    }

    @Test("the MD5-based multipart ETag and the composite checksum identify a completed object")
    func completedObjectIdentity() {
        let parts = [
            UploadedPart(number: 1, etag: "\"5d41402abc4b2a76b9719d911017c592\"",
                         checksumSHA256: "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", size: 5),
            UploadedPart(number: 2, etag: "\"7d793037a0760186574b0282f2f435e7\"",
                         checksumSHA256: "SG6kYiTRu0+2gPNPfJrZao8k7Ii+c+qOWmxlJg6cuKc=", size: 5),
        ]
        // md5(md5("hello") ‖ md5("world"))-2 and sha256(sha256("hello") ‖ sha256("world"))-2, as S3 computes them.
        let byETag = ObjectInfo(key: "k", size: 10, etag: "\"065947336a2f2a95ba8899f3675c3be6-2\"")
        let byChecksum = ObjectInfo(key: "k", size: 10, etag: "\"other\"",
                                    checksumSHA256: "cwXbmyq8zXBsJW2z2X5f9I1nfP5NOlkEr7faDjlQ4eI=-2")
        let wrong = ObjectInfo(key: "k", size: 10, etag: "\"00000000000000000000000000000000-2\"")
        #expect(MultipartUploader.isObject(byETag, madeOf: parts))
        #expect(MultipartUploader.isObject(byChecksum, madeOf: parts))
        #expect(MultipartUploader.isObject(wrong, madeOf: parts) == false)
    }
}
