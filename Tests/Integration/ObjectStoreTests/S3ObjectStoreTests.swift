import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PipelineCore
import SigV4
import Testing
@testable import ObjectStore

/// Every operation against the moto server, with signature checking on.
@Suite("S3 object store against moto")
struct S3ObjectStoreTests {
    static let part = 5 << 20

    /// Sizes at the edges: empty, one byte, exactly one part, one byte more, several parts with a short last one.
    static let sizes = [0, 1, part, part + 1, 2 * part + 3]

    @Test("put, get, head and delete round-trip", arguments: sizes, [false, true])
    func roundTrip(size: Int, forceMultipart: Bool) async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "roundtrip", prefix: "staging/", counter: counter)
        let bytes = testBytes(size, seed: UInt64(size) + 7)
        let options = PutOptions(contentType: "application/octet-stream", metadata: ["source": "DVD 12"],
                                 multipartThreshold: forceMultipart ? 0 : Self.part, partSize: Self.part)
        counter.reset()
        let result = try await store.put("disc/file.bin", from: .bytes(bytes), options: options)

        #expect(result.sha256 == sha256Hex(bytes))
        #expect(result.size == Int64(size))
        let threshold = forceMultipart ? 0 : Self.part
        let expectedParts = size > threshold && size > 0 ? (size + Self.part - 1) / Self.part : 0
        #expect(result.partCount == expectedParts)
        #expect(counter.uploadPartCount == expectedParts)

        let info = try #require(try await store.head("disc/file.bin"))
        #expect(info.size == Int64(size))
        #expect(info.metadata["source"] == "DVD 12")
        #expect(info.storageClassName == "STANDARD")
        #expect(info.restore == .notArchived)

        let download = try await store.get("disc/file.bin")
        #expect(download.contentLength == Int64(size))
        let received = try await download.body.collect(upTo: 64 << 20)
        #expect(Array(received.readableBytesView) == bytes)

        // The object is under the store's prefix in the bucket.
        let raw = try moto.store(bucket: store.bucket)
        #expect(try await raw.head("staging/disc/file.bin")?.size == Int64(size))

        try await store.delete("disc/file.bin")
        #expect(try await store.head("disc/file.bin") == nil)
        try await store.delete("disc/file.bin")  // deleting a missing key succeeds
    }

    @Test("the whole-object SHA-256 is computed for files and streams too")
    func sourcesOfEveryKind() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "sources")
        let bytes = testBytes(Self.part * 2 + 12345, seed: 3)
        let path = NSTemporaryDirectory() + "objectstore-source-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let options = PutOptions(multipartThreshold: Self.part, partSize: Self.part, maxPartsInFlight: 2)
        let fromFile = try await store.put("file", from: .file(path), options: options)
        let stream = HangingStream(bytes: bytes, chunkSize: 100_000)
        let fromStream = try await store.put("stream", from: .stream(stream, length: Int64(bytes.count)),
                                             options: options)
        #expect(fromFile.sha256 == sha256Hex(bytes))
        #expect(fromStream.sha256 == sha256Hex(bytes))
        #expect(fromFile.partCount == 3)
        #expect(try await store.getBytes("file") == bytes)
        #expect(try await store.getBytes("stream") == bytes)
    }

    @Test("a stream shorter or longer than announced fails and leaves no upload behind")
    func lengthMismatch() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "mismatch")
        let bytes = testBytes(Self.part + 10)
        let short = HangingStream(bytes: bytes, chunkSize: 65536)
        let options = PutOptions(multipartThreshold: 0, partSize: Self.part)
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.put("short", from: .stream(short, length: Int64(bytes.count + 1)), options: options)
        }
        #expect(error?.kind == .sourceChanged)
        let long = HangingStream(bytes: bytes, chunkSize: 65536)
        let longError = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.put("long", from: .stream(long, length: Int64(bytes.count - 1)), options: options)
        }
        #expect(longError?.kind == .sourceChanged)
        #expect(try await store.listMultipartUploads(prefix: "").isEmpty)
        #expect(try await store.head("short") == nil)
        #expect(try await store.head("long") == nil)
    }

    /// docker/local/moto_server.py makes moto check signatures over the path as sent, as AWS does; plain moto
    /// refuses '+', non-ASCII and reserved characters even from boto3.
    @Test("keys with spaces, '+', unicode and reserved punctuation", arguments: [
        "with space/file name.txt", "  leading and trailing spaces  ", "dash-under_score.tilde~/x.y",
        "a+b=c.txt", "ünïcödé/фото 1.jpg", "reserved!$&'()*,;@:.txt",
    ])
    func unusualKeys(key: String) async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "keys")
        let bytes = Array("content of \(key)".utf8)
        _ = try await store.put(key, bytes: bytes)
        #expect(try await store.getBytes(key) == bytes)
        #expect(try await store.head(key)?.size == Int64(bytes.count))
        let listed = try await store.list(prefix: "").objects.map(\.key)
        #expect(listed == [key])
        let copied = try await store.copy(from: key, to: key + " copy")
        #expect(copied.size == Int64(bytes.count))
        try await store.delete(key)
        #expect(try await store.head(key) == nil)
    }

    /// Without '/' in the list prefix: moto cannot verify signatures over a '/' in a query value (RequestEncodingTests
    /// checks those against botocore).
    @Test("list pages by prefix in key order")
    func listing() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "list")
        let keys = ["a/1", "a/2", "a/3", "b/1", "a-x"]
        for key in keys { _ = try await store.put(key, bytes: Array(key.utf8)) }

        var seen: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await store.list(prefix: "a", continuationToken: token, maxKeys: 2)
            seen += page.objects.map(\.key)
            token = page.nextContinuationToken
            pages += 1
        } while token != nil
        #expect(seen == ["a-x", "a/1", "a/2", "a/3"])
        #expect(pages == 2)

        var all: [String] = []
        for try await object in store.listAll() { all.append(object.key) }
        #expect(all == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let one = try await store.list(prefix: "b").objects
        #expect(one.count == 1 && one[0].size == 3 && one[0].storageClassName == "STANDARD")
    }

    @Test("deleting many keys at once (32 requests in flight) removes them all, a missing key included")
    func deleteMany() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "deletemany")
        let keys = (0..<70).map { "sources/1/file \($0)+ü" }
        for key in keys + ["kept"] { _ = try await store.put(key, bytes: Array(key.utf8)) }
        let failures = await store.delete(keys: keys + ["never existed"])
        #expect(failures.isEmpty, "\(failures)")
        var remaining: [String] = []
        for try await object in store.listAll() { remaining.append(object.key) }
        #expect(remaining == ["kept"])
    }

    @Test("ranged GET returns exactly the bytes asked for")
    func ranges() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "range")
        let bytes = testBytes(1000, seed: 9)
        _ = try await store.put("r", bytes: bytes)
        let middle = try await store.get("r", range: ByteRange(10...19))
        #expect(middle.contentLength == 10)
        #expect(middle.info.size == 1000)
        #expect(Array(try await middle.body.collect(upTo: 1 << 20).readableBytesView) == Array(bytes[10...19]))
        let tail = try await store.getBytes("r", range: ByteRange(first: 990))
        #expect(tail == Array(bytes[990...]))
    }

    @Test("copy: CopyObject with a storage class, and UploadPartCopy above the single-copy limit")
    func copies() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "copy", counter: counter)
        let bytes = testBytes(2 * Self.part + 100, seed: 5)
        _ = try await store.put("source", from: .bytes(bytes),
                                options: PutOptions(contentType: "video/x-dv", metadata: ["label": "DVD 3"],
                                                    multipartThreshold: Self.part, partSize: Self.part))

        let single = try await store.copy(from: "source", to: "single", options: CopyOptions(storageClass: .glacier))
        #expect(single.size == Int64(bytes.count))
        #expect(single.storageClassName == "GLACIER")

        counter.reset()
        let big = try await store.copy(from: "source", to: "big",
                                       options: CopyOptions(singleCopyLimit: 1, partSize: Int64(Self.part)))
        #expect(counter.requests.filter { $0.isUploadPart }.count == 3)  // UploadPartCopy requests
        #expect(big.size == Int64(bytes.count))
        #expect(big.metadata["label"] == "DVD 3")
        #expect(try await store.getBytes("big") == bytes)

        let missing = await #expect(throws: ObjectStoreError.self) { _ = try await store.copy(from: "nope", to: "x") }
        #expect(missing?.kind == .notFound)
    }

    @Test("DEEP_ARCHIVE objects need a restore before they can be read")
    func archiveAndRestore() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "restore")
        let bytes = testBytes(100)
        _ = try await store.put("archived", from: .bytes(bytes), options: PutOptions(storageClass: .deepArchive))
        let info = try #require(try await store.head("archived"))
        #expect(info.storageClassName == "DEEP_ARCHIVE")
        #expect(info.restore == .archived)

        let error = await #expect(throws: ObjectStoreError.self) { _ = try await store.getBytes("archived") }
        #expect(error?.kind == .invalidObjectState)
        #expect(error?.description.contains("s3://\(store.bucket)/archived") == true)
        #expect(error?.description.contains("InvalidObjectState") == true)

        #expect(try await store.requestRestore("archived", days: 2, tier: .bulk) == .started)
        let restored = try #require(try await store.head("archived"))
        guard case .restored(let until) = restored.restore else {
            Issue.record("expected a finished restore, got \(restored.restore)")
            return
        }
        #expect(until.map { $0 > Date() } ?? true)
        #expect(try await store.getBytes("archived") == bytes)
        #expect(try await store.requestRestore("archived", days: 3, tier: .standard) == .alreadyRestored)
    }

    /// moto answers every presigned request with a 500 while it enforces SigV4 (it looks for an Authorization
    /// header), so the URL itself is compared with botocore's in RequestEncodingTests.
    @Test("presigned GET URLs name the object, carry a signature and expire within 7 days")
    func presign() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "presign")
        _ = try await store.put("doc.txt", bytes: Array("hello".utf8))
        let url = try await store.presignedGetURL("doc.txt", expiresIn: .seconds(600))
        #expect(url.hasPrefix("\(moto.endpoint)/\(store.bucket)/doc.txt?"))
        #expect(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=600"))
        #expect(url.contains("X-Amz-Credential=\(moto.accessKeyID)%2F"))

        // The URL works for anyone holding it, and only unaltered.
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        #expect(response.status == .ok)
        #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)) == "hello")
        let tampered = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url.replacingOccurrences(of: "X-Amz-Expires=600", with: "X-Amz-Expires=601")), timeout: .seconds(30))
        #expect(tampered.status == .forbidden)

        let tooLong = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.presignedGetURL("doc.txt", expiresIn: .seconds(604_801))
        }
        #expect(tooLong?.kind == .invalidArgument)
    }

    @Test("a wrong secret is rejected at once with a clear error that holds no secret")
    func wrongSecret() async throws {
        let moto = try MotoServer.fromEnvironment()
        let good = try await moto.freshStore(label: "auth")
        let counter = CountingTransport()
        let secret = "wrong-secret-\(UUID().uuidString)"
        let bad = try moto.store(
            bucket: good.bucket,
            credentials: AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret), counter: counter,
            retry: RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(10)))
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await bad.put("private/key.bin", bytes: [1, 2, 3])
        }
        #expect(error?.kind == .invalidCredentials)
        #expect(error?.serverCode == "SignatureDoesNotMatch")
        #expect(counter.requests.count == 1, "an authentication failure is not retried")
        let text = try #require(error?.description)
        #expect(text.contains("s3://\(good.bucket)/private/key.bin"))
        #expect(!text.contains(secret))
        #expect(!text.contains("Signature="))
        #expect(!text.contains("AWS4-HMAC-SHA256"))

        let unknownKey = try moto.store(
            bucket: good.bucket, credentials: AWSCredentials(accessKeyID: "AKIAUNKNOWN000000000", secretAccessKey: secret))
        let unknown = await #expect(throws: ObjectStoreError.self) { _ = try await unknownKey.list(prefix: "") }
        #expect(unknown?.kind == .invalidCredentials)
        #expect(unknown?.serverCode == "InvalidAccessKeyId")
        #expect(unknown?.description.contains(secret) == false)
    }

    @Test("a missing bucket fails at once with NoSuchBucket")
    func missingBucket() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try moto.store(bucket: uniqueBucketName("missing"), counter: counter)
        let error = await #expect(throws: ObjectStoreError.self) { _ = try await store.put("k", bytes: [1]) }
        #expect(error?.kind == .noSuchBucket)
        #expect(error?.serverCode == "NoSuchBucket")
        #expect(counter.requests.count == 1)
    }

    @Test("objects are opened from StorageURL through the factory")
    func factory() async throws {
        let moto = try MotoServer.fromEnvironment()
        let bucket = uniqueBucketName("factory")
        try await moto.store(bucket: bucket).createBucket()
        let environment = [
            "AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_REGION": moto.region,
            "AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey,
            "AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent",
        ]
        let store = try await openObjectStore(url: try StorageURL(parsing: "s3://\(bucket)/staging"),
                                              settings: ObjectStoreSettings(environment: environment))
        #expect(store.location == .s3(bucket: bucket, prefix: "staging/"))
        _ = try await store.put("x", bytes: [42])
        #expect(try await moto.store(bucket: bucket).getBytes("staging/x") == [42])
    }
}
