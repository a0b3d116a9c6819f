import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SigV4
import Testing
import TestSupport
@testable import ObjectStore

/// Keys and queries moto cannot judge (see ``BotocoreOracle``): the requests we send must be exactly botocore's.
@Suite("request encoding and signing, judged by botocore", .onOwnThreads)
struct RequestEncodingTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let keys = [
        "a+b=c&d.txt", "ünïcødé/日本語 ファイル.bin", "emoji 🎞️/clip.dv", "odd ~!$'()*,;:@[]{}^%.txt",
        "plus+and%2Bescaped", "with space/file name.txt",
    ]

    func recordingServer() async throws -> LoopbackHTTPServer {
        try await LoopbackHTTPServer { request, _ in
            if request.uri.contains("list-type=2") {
                return .xml(.ok, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
            }
            // As S3 answers a PUT: the checksum it verified, echoed.
            return .respond(status: .ok, headers: [("ETag", "\"e\""), ("x-amz-checksum-sha256", request.headers.first(name: "x-amz-checksum-sha256") ?? "")])
        }
    }

    func store(_ server: LoopbackHTTPServer, prefix: String = "") throws -> S3ObjectStore {
        try S3ObjectStore(bucket: "bucket", prefix: prefix,
                          configuration: S3Configuration(region: "eu-west-1", endpoint: server.endpoint),
                          credentials: StaticCredentialProvider(Self.credentials))
    }

    /// botocore's Authorization header for a request we sent, over the same signed headers.
    func botocoreAuthorization(for request: RecordedRequest, server: LoopbackHTTPServer, url: String) throws -> String {
        let authorization = try #require(request.headers.first(name: "Authorization"))
        let signedNames = try #require(authorization.components(separatedBy: "SignedHeaders=").last?
            .components(separatedBy: ",").first).split(separator: ";").map(String.init)
        var headers: [String: String] = [:]
        for name in signedNames where !["host", "x-amz-date", "x-amz-content-sha256"].contains(name) {
            headers[name] = request.headers.first(name: name)
        }
        return try BotocoreOracle.run(.init(
            mode: "sign", method: request.method.rawValue, url: url, headers: headers,
            bodyBase64: Data(request.body).base64EncodedString(),
            amzDate: try #require(request.headers.first(name: "X-Amz-Date")),
            accessKeyID: Self.credentials.accessKeyID, secretAccessKey: Self.credentials.secretAccessKey,
            region: "eu-west-1"))
    }

    @Test("object keys are encoded and signed exactly as botocore does", arguments: keys)
    func keyEncoding(key: String) async throws {
        let server = try await recordingServer()
        defer { Task { await server.shutdown() } }
        _ = try await store(server, prefix: "staging/").put(key, bytes: Array("body of \(key)".utf8),
                                                              options: PutOptions(metadata: ["label": "DVD 1"]))
        let request = try #require(server.requests.first)
        let expectedPath = "/bucket/" + (try BotocoreOracle.encodedKey("staging/" + key))
        #expect(request.uri == expectedPath)
        let expected = try botocoreAuthorization(for: request, server: server, url: server.endpoint + request.uri)
        #expect(request.headers.first(name: "Authorization") == expected)
    }

    @Test("hand-checked encodings of '+', unicode and reserved characters")
    func handCheckedEncodings() {
        let client = try? store(forEncodingOnly: ())
        #expect(client?.path(for: "a+b=c&d.txt") == "/bucket/a%2Bb%3Dc%26d.txt")
        #expect(client?.path(for: "ü/x y") == "/bucket/%C3%BC/x%20y")
        #expect(client?.path(for: "~tilde-dash_under.dot") == "/bucket/~tilde-dash_under.dot")
    }

    func store(forEncodingOnly: Void) throws -> S3Client {
        try S3ObjectStore(bucket: "bucket", configuration: S3Configuration(region: "us-east-1", endpoint: "http://h:1"),
                          credentials: StaticCredentialProvider(Self.credentials)).client
    }

    @Test("list prefixes with '/', spaces and '+' are encoded and signed exactly as botocore does")
    func listQueryEncoding() async throws {
        let server = try await recordingServer()
        defer { Task { await server.shutdown() } }
        _ = try await store(server, prefix: "p/").list(prefix: "dir/sub dir/ü+", continuationToken: "tok/en+=", maxKeys: 10)
        let request = try #require(server.requests.first)
        #expect(request.path == "/bucket")
        let items = Dictionary(uniqueKeysWithValues: request.query.split(separator: "&").map {
            let pair = $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(pair[0]), pair.count > 1 ? String(pair[1]) : "")
        })
        #expect(items["prefix"] == "p%2Fdir%2Fsub%20dir%2F%C3%BC%2B")
        #expect(items["continuation-token"] == "tok%2Fen%2B%3D")
        #expect(items["list-type"] == "2" && items["max-keys"] == "10")
        let expected = try botocoreAuthorization(for: request, server: server, url: server.endpoint + request.uri)
        #expect(request.headers.first(name: "Authorization") == expected)
    }

    @Test("presigned GET URLs are the ones botocore makes", arguments: ["doc.txt", "a+b/ünï code.bin"])
    func presignedURL(key: String) async throws {
        let store = try S3ObjectStore(
            bucket: "bucket", prefix: "pre/", configuration: S3Configuration(region: "eu-west-1", endpoint: "http://127.0.0.1:9000"),
            credentials: StaticCredentialProvider(Self.credentials))
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let url = try await store.client.presignedURL(key: "pre/" + key, expiresIn: 3600, date: date)
        let amzDate = "20231114T221320Z"
        let expected = try BotocoreOracle.run(.init(
            mode: "presign", url: "http://127.0.0.1:9000/bucket/" + (try BotocoreOracle.encodedKey("pre/" + key)),
            amzDate: amzDate, accessKeyID: Self.credentials.accessKeyID,
            secretAccessKey: Self.credentials.secretAccessKey, region: "eu-west-1", expires: 3600))
        func parts(_ url: String) -> (String, Set<String>) {
            let split = url.split(separator: "?", maxSplits: 1)
            return (String(split[0]), Set(split.count > 1 ? split[1].split(separator: "&").map(String.init) : []))
        }
        #expect(parts(url).0 == parts(expected).0)
        #expect(parts(url).1 == parts(expected).1)
        #expect(parts(url).1.contains("X-Amz-Expires=3600"))
    }
}
