import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import ObjectStore
import SigV4
import SystemIO

/// The S3 API under test: the moto server `scripts/test` starts with signature checking on.
struct MotoServer: Sendable {
    let endpoint: String
    let region: String
    let accessKeyID: String
    let secretAccessKey: String

    /// Fails the test (it does not skip it) when the variables are missing.
    static func fromEnvironment(sourceLocation: SourceLocation = #_sourceLocation) throws -> MotoServer {
        let environment = ProcessInfo.processInfo.environment
        func required(_ name: String) throws -> String {
            try #require(environment[name].flatMap { $0.isEmpty ? nil : $0 },
                         "\(name) is not set: run the tests with scripts/test", sourceLocation: sourceLocation)
        }
        return MotoServer(endpoint: try required("TEST_S3_ENDPOINT"), region: try required("TEST_S3_REGION"),
                          accessKeyID: try required("TEST_S3_ACCESS_KEY_ID"),
                          secretAccessKey: try required("TEST_S3_SECRET_ACCESS_KEY"))
    }

    var credentials: AWSCredentials { AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey) }

    func configuration(retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10))) -> S3Configuration {
        S3Configuration(region: region, endpoint: endpoint, retry: retry)
    }

    /// A store on a new, uniquely named bucket (created here), optionally counting its requests.
    func freshStore(label: String, prefix: String = "", counter: CountingTransport? = nil) async throws -> S3ObjectStore {
        let bucket = uniqueBucketName(label)
        let store = try store(bucket: bucket, prefix: prefix, counter: counter)
        try await store.createBucket()
        return store
    }

    func store(bucket: String, prefix: String = "", credentials: AWSCredentials? = nil,
               counter: CountingTransport? = nil, retry: RetryPolicy? = nil) throws -> S3ObjectStore {
        let transport: any HTTPTransport = counter ?? CountingTransport()
        return try S3ObjectStore(
            bucket: bucket, prefix: prefix, configuration: retry.map { configuration(retry: $0) } ?? configuration(),
            credentials: StaticCredentialProvider(credentials ?? self.credentials), transport: transport,
            logger: Logger(label: "test"))
    }
}

func uniqueBucketName(_ label: String) -> String {
    let clean = label.lowercased().filter { $0.isLetter && $0.isASCII || $0.isNumber || $0 == "-" }
    return "ost-\(clean.prefix(30))-\(UUID().uuidString.lowercased().prefix(13))"
}

/// Sends through the module's HTTP client and records every request, so a test can see what really went out.
final class CountingTransport: HTTPTransport, @unchecked Sendable {
    struct Sent: Sendable {
        var method: String
        var url: String
        var query: String { url.contains("?") ? String(url.drop { $0 != "?" }.dropFirst()) : "" }
        var isUploadPart: Bool { method == "PUT" && query.contains("partNumber=") && query.contains("uploadId=") }
    }

    private let base = AsyncHTTPClientTransport(client: ObjectStoreHTTPClient.shared)
    private let sent = LockedBox<[Sent]>([])

    var requests: [Sent] { sent.value }
    var uploadPartCount: Int { requests.filter(\.isUploadPart).count }
    func reset() { sent.withLock { $0.removeAll() } }

    func execute(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse {
        sent.withLock { $0.append(Sent(method: request.method.rawValue, url: request.url)) }
        return try await base.execute(request, deadline: deadline)
    }
}

/// Deterministic bytes that do not compress and differ per seed.
func testBytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        let words = count / 8
        let wordPointer = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
        for index in 0..<words {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            wordPointer[index] = state
        }
        for index in (words * 8)..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            raw[index] = UInt8(truncatingIfNeeded: state)
        }
    }
    return bytes
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// A stream that yields `bytes` in chunks; with `hangAfter` it stops after that many bytes and waits until it is
/// cancelled (a stalled disc, a killed process), otherwise it ends after the last byte.
struct HangingStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    var hangAfter: Int?
    var chunkSize: Int

    init(bytes: [UInt8], hangAfter: Int? = nil, chunkSize: Int = 256 << 10) {
        self.bytes = bytes
        self.hangAfter = hangAfter
        self.chunkSize = chunkSize
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let hangAfter: Int?
        let chunkSize: Int
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            if let hangAfter, offset >= hangAfter {
                try await Task.sleep(for: .seconds(3600))
                return nil
            }
            let end = Swift.min(offset + chunkSize, hangAfter ?? bytes.count, bytes.count)
            guard end > offset else { return nil }
            defer { offset = end }
            return ByteBuffer(bytes: bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(bytes: bytes, hangAfter: hangAfter, chunkSize: chunkSize)
    }
}

/// A stream that yields `bytes` up to `failAfter` bytes, then throws (a disc with a bad sector).
struct FailingStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    struct ReadError: Error {}
    let bytes: [UInt8]
    let failAfter: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let failAfter: Int
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            if offset >= failAfter { throw ReadError() }
            let end = Swift.min(offset + (1 << 20), failAfter)
            defer { offset = end }
            return ByteBuffer(bytes: bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes, failAfter: failAfter) }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(60), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
