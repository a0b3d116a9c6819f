import Accounts
import AsyncHTTPClient
import Catalog
import Foundation
import NIOCore
import NIOHTTP1
import ObjectStore
import PipelineCore
import PostgresNIO
import StatusServer
import SystemIO
import Testing
import TestSupport

/// What the browser-upload tests share: a fresh catalog (the harness's database, migrated), a real staging store
/// (moto S3 or a directory), a directory for the partial files, and two members with personal tokens.
struct UploadFixture: Sendable {
    let harness: PipelineHarness
    let client: PostgresClient
    let partials: String
    let ann: AccountUser
    let annToken: Secret
    let ben: AccountUser
    let benToken: Secret

    static let password = "a long enough password"

    var annAuth: (String, String) { ("Authorization", "Bearer " + annToken.revealed) }
    var benAuth: (String, String) { ("Authorization", "Bearer " + benToken.revealed) }

    func configuration(maxSize: Int64 = 512 << 20) throws -> StatusServerConfiguration {
        var configuration = try testConfiguration()
        // 5 MiB chunks (the default is 64): the browser test's 50 MB file then goes in ten, one of them cut.
        configuration.uploads = BrowserUploadSettings(directory: partials, maxSize: maxSize, reserveBytes: 0, writeBufferBytes: 256 << 10, chunkBytes: 5 << 20)
        return configuration
    }

    /// The real server on a loopback port, uploads on.
    func withServer<T: Sendable>(maxSize: Int64 = 512 << 20, _ body: (String) async throws -> T) async throws -> T {
        try await withStatusServer(try configuration(maxSize: maxSize), client: client, staging: harness.staging, body)
    }

    func partialSize(_ id: String) -> Int64? {
        (try? FileManager.default.attributesOfItem(atPath: partials + "/" + id + ".part")[.size] as? NSNumber)?.int64Value
    }
}

func withUploadFixture(_ staging: PipelineHarness.Staging, _ body: (UploadFixture) async throws -> Void) async throws {
    try await PipelineHarness.with(staging) { harness in
        try await CatalogDatabase.withClient(harness.database.url, logger: logger) { client in
            try await Migrator(logger: logger).migrate(client)
            let accounts = AccountService(client: client, logger: logger)
            let ann = try await accounts.addUser(name: "ann", role: .member, password: Secret(UploadFixture.password))
            let ben = try await accounts.addUser(name: "ben", role: .member, password: Secret(UploadFixture.password))
            let fixture = UploadFixture(
                harness: harness, client: client, partials: harness.work.path + "/browser-uploads", ann: ann,
                annToken: try await accounts.issueToken(userName: "ann", tokenName: "t"), ben: ben,
                benToken: try await accounts.issueToken(userName: "ben", tokenName: "t"))
            try await body(fixture)
        }
    }
}

/// tus's `Upload-Metadata`: `key base64value` pairs.
func tusMetadata(_ pairs: KeyValuePairs<String, String>) -> String {
    pairs.map { "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }.joined(separator: ",")
}

let tusVersion = ("Tus-Resumable", "1.0.0")

/// Creates an upload and returns its path (`/api/uploads/<id>`).
func createUpload(_ base: String, auth: (String, String), length: Int, metadata: String) async throws -> String {
    let created = try await request(
        base + "/api/uploads", method: .POST, headers: [auth, tusVersion, ("Upload-Length", String(length)), ("Upload-Metadata", metadata)])
    try #require(created.status == 201, "creation: \(created.status) \(created.body)")
    return try #require(created.headers["Location"].first)
}

/// Sends `bytes` as one PATCH at `offset`.
func patchUpload(_ base: String, _ location: String, auth: (String, String), offset: Int, bytes: ArraySlice<UInt8>) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: base + location)
    request.method = .PATCH
    for (name, value) in [auth, tusVersion, ("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", String(offset))] {
        request.headers.add(name: name, value: value)
    }
    request.body = .bytes(ByteBuffer(bytes: bytes))
    let response = try await testHTTPClient.execute(request, timeout: .seconds(60))
    let body = try await response.body.collect(upTo: 1 << 20)
    return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
}

/// The upload's offset by HEAD.
func headOffset(_ base: String, _ location: String, auth: (String, String)) async throws -> Int? {
    let head = try await request(base + location, method: .HEAD, headers: [auth, tusVersion])
    return head.status == 200 ? head.headers["Upload-Offset"].first.flatMap { Int($0) } : nil
}

/// Waits until the server has stored the upload (its `GET /api/uploads/<id>` says `stored`) and returns that JSON.
func waitUntilStored(_ base: String, _ location: String, auth: (String, String), seconds: Int = 120) async throws -> [String: Any] {
    let deadline = ContinuousClock.now + .seconds(seconds)
    var last = ""
    while ContinuousClock.now < deadline {
        let answer = try await request(base + location, headers: [auth])
        last = answer.body
        if answer.status == 200, let object = try? jsonObject(answer.body), object["state"] as? String == "stored" { return object }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw TestFailure("the upload was not stored within \(seconds) s: \(last)")
}

/// One line of text: the refusals' contract.
func isOneLine(_ body: String) -> Bool {
    let trimmed = body.hasSuffix("\n") ? String(body.dropLast()) : body
    return !trimmed.isEmpty && !trimmed.contains("\n")
}

/// Runs a helper program (a Python client) to its end without holding one of NIO's blocking threads while it runs:
/// `Subprocess.wait` blocks one in `waitpid`, and the status server under test needs that small pool (two threads on
/// two cores) for its own writes, fsyncs and bcrypt, so a client waiting on the server would starve it. The child is
/// reaped only once `/proc` shows it has exited (a zombie), when `wait` returns at once.
func runPolling(_ executable: String, _ arguments: [String]) async throws -> Subprocess.Result {
    let running = try Subprocess.spawn(executable, arguments)
    while running.isRunning {
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await running.wait()
}
