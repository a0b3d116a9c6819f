import Crypto
import Foundation
import Logging
import PipelineCore
import Testing
import TestSupport
@testable import ObjectStore

/// S3's answers that are not what they seem, injected by a proxy in front of moto (`scripts/lib/fault_proxy.py`):
/// a 200 whose body is an error (after whitespace, as S3 pads a CompleteMultipartUpload), a 200 with no result, a
/// reset connection. None may ever be taken for a stored object.
@Suite("S3 faults through a proxy")
struct FaultInjectionTests {
    static let partSize = 5 << 20
    static let options = PutOptions(multipartThreshold: 5 << 20, partSize: 5 << 20)

    static func withProxy(_ body: (S3ObjectStore, S3ObjectStore, FaultProxy) async throws -> Void) async throws {
        let moto = try MotoServer.fromEnvironment()
        let proxy = try await FaultProxy()
        defer { proxy.stop() }
        let bucket = uniqueBucketName("faults")
        let direct = try moto.store(bucket: bucket)
        try await direct.createBucket()
        let proxied = try S3ObjectStore(
            bucket: bucket, prefix: "", configuration: S3Configuration(region: moto.region, endpoint: proxy.endpoint,
                                                                   retry: RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(10))),
            credentials: StaticCredentialProvider(moto.credentials), transport: CountingTransport(), logger: Logger(label: "test"))
        try await body(proxied, direct, proxy)
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test("CompleteMultipartUpload answered 200 with an error (whitespace first), before or after completing, or with no result: retried or checked, never taken for success",
          arguments: ["error-200-before", "error-200-after", "empty-200-after", "reset-after", "500"])
    func completeAnswersThatLie(_ action: String) async throws {
        try await Self.withProxy { proxied, direct, proxy in
            let bytes = (0..<(2 * Self.partSize + 1000)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try await proxy.inject([.init("CompleteMultipartUpload", action, times: 1)])
            let result = try await proxied.put("big.bin", bytes: bytes, options: Self.options)
            #expect(try await proxy.injected()["CompleteMultipartUpload \(action)"] == 1)
            #expect(result.sha256 == Self.sha256(bytes))
            let stored = try await direct.getBytes("big.bin")
            #expect(stored.count == bytes.count && Self.sha256(stored) == Self.sha256(bytes), "the stored object is not the one sent")
        }
    }

    @Test("a CompleteMultipartUpload that keeps answering 200 with an error fails the upload; nothing is reported stored")
    func completeAlwaysFails() async throws {
        try await Self.withProxy { proxied, direct, proxy in
            let bytes = [UInt8](repeating: 7, count: Self.partSize + 10)
            try await proxy.inject([.init("CompleteMultipartUpload", "error-200-before")])
            await #expect(throws: ObjectStoreError.self) { _ = try await proxied.put("never.bin", bytes: bytes, options: Self.options) }
            #expect(try await direct.head("never.bin") == nil)
        }
    }

    @Test("a single PUT answered 200 with no confirmation, or with an error after whitespace: confirmed or retried, never taken on trust",
          arguments: ["empty-200-after", "error-200-before", "reset-after"])
    func singlePutAnswersThatLie(_ action: String) async throws {
        try await Self.withProxy { proxied, direct, proxy in
            let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try await proxy.inject([.init("PutObject", action, times: 1)])
            _ = try await proxied.put("small.bin", bytes: bytes)
            #expect(try await proxy.injected()["PutObject \(action)"] == 1)
            #expect(Self.sha256(try await direct.getBytes("small.bin")) == Self.sha256(bytes))
        }
    }

    @Test("a single PUT answered 200 with nothing while nothing was stored is an error, not a stored object")
    func singlePutNeverStored() async throws {
        try await Self.withProxy { proxied, direct, proxy in
            try await proxy.inject([.init("PutObject", "empty-200-before")])
            await #expect(throws: ObjectStoreError.self) { _ = try await proxied.put("ghost.bin", bytes: [1, 2, 3]) }
            #expect(try await direct.head("ghost.bin") == nil)
        }
    }

    @Test("CopyObject and UploadPartCopy answered 200 with an error are retried; the copy is the source")
    func copyAnswersThatLie() async throws {
        try await Self.withProxy { proxied, direct, proxy in
            let bytes = (0..<(Self.partSize + 77)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            _ = try await direct.put("source.bin", bytes: bytes)
            try await proxy.inject([.init("CopyObject", "error-200-before", times: 1), .init("UploadPartCopy", "error-200-before", times: 1)])
            _ = try await proxied.copy(from: "source.bin", to: "single.bin")
            _ = try await proxied.copy(from: "source.bin", to: "parts.bin", options: CopyOptions(singleCopyLimit: 1 << 20, partSize: 5 << 20))
            let injected = try await proxy.injected()
            #expect(injected["CopyObject error-200-before"] == 1 && injected["UploadPartCopy error-200-before"] == 1, "\(injected)")
            for key in ["single.bin", "parts.bin"] { #expect(Self.sha256(try await direct.getBytes(key)) == Self.sha256(bytes), "\(key)") }
        }
    }

    @Test("a stored object's content is judged by the server's checksum or ETag against the local bytes, single or in parts, never by metadata",
          arguments: [1000, 2 * (5 << 20) + 321])
    func storedContentCheck(size: Int) async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "content-check")
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 3) }
        var other = bytes
        other[size / 2] ^= 1
        let options = PutOptions(storageClass: .deepArchive, metadata: ["sha256": Self.sha256(bytes)], multipartThreshold: 5 << 20, partSize: 5 << 20)
        _ = try await store.put("object", bytes: bytes, options: options)
        let info = try #require(try await store.head("object"))
        #expect(!info.restore.isReadable, "Deep Archive: the bytes cannot be read back")
        func check(_ local: [UInt8], claimed: String) async throws -> Bool {
            try await StoredContentCheck.holds(info, in: store, sha256: claimed, size: Int64(size), options: options) {
                ObjectByteStream(bytes: local)
            }
        }
        #expect(try await check(bytes, claimed: Self.sha256(bytes)))
        // Other local bytes with the object's claimed hash, or the right bytes claimed as something else: no.
        #expect(try await !check(other, claimed: Self.sha256(bytes)))
        #expect(try await !check(bytes, claimed: Self.sha256(other)))
    }
}
