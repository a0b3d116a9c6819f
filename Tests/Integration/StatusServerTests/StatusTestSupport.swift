import AsyncHTTPClient
import Catalog
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ObjectStore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import StatusServer
import TestSupport
import Alerts
import HTTPTypes
import HummingbirdTesting

let logger = TestEnvironment.logger

/// A fresh, migrated catalog.
func withCatalog<T: Sendable>(_ body: (TestDatabase, PostgresClient) async throws -> T) async throws -> T {
    try await TestDatabase.withFresh { database, client in
        try await Migrator(logger: logger).migrate(client)
        return try await body(database, client)
    }
}

/// Runs `sql` (statements separated by a semicolon at the end of a line) and discards the rows.
func exec(_ client: PostgresClient, _ sql: String) async throws {
    for statement in sql.components(separatedBy: ";\n") where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        do {
            _ = try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
        } catch let error as PSQLError {
            throw TestFailure("\(error.serverInfo?[.message] ?? String(reflecting: error)) in: \(statement)")
        }
    }
}

func scalar<T: PostgresDecodable & Sendable>(_ client: PostgresClient, _ sql: String, as type: T.Type = T.self) async throws -> T {
    for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(T.self) { return value }
    throw TestFailure("no row for \(sql)")
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs the real status server on a free loopback port for the duration of `body`, which gets its base URL.
func withStatusServer<T: Sendable>(
    _ configuration: StatusServerConfiguration, client: PostgresClient, staging: (any ObjectStore)? = nil, _ body: (String) async throws -> T
) async throws -> T {
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let app = buildStatusApplication(configuration: configuration, client: client, logger: logger, staging: staging) { port in
        portContinuation.yield(port)
    }
    return try await withRunningService(app, port: ports) { port in try await body("http://127.0.0.1:\(port)") }
}

struct HTTPResult: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String
    /// The body as bytes (downloads).
    var bytes: [UInt8] = []
}

/// Plain HTTP on loopback; redirects are not followed so that tests see them.
let testHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.redirectConfiguration = .disallow
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

func request(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await testHTTPClient.execute(request, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
    return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes), bytes: Array(buffer: bytes))
}

/// Decodes a JSON object body.
func jsonObject(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(text.prefix(200))")
    }
    return object
}

func int64(_ value: Any?) -> Int64? {
    (value as? NSNumber)?.int64Value
}

/// Configuration for tests: loopback, port 0, no caching (every request reads the catalog), no watchdog unless
/// asked.
func testConfiguration(token: String? = nil, webhook: String? = nil, watchdog: WatchdogSettings? = nil) throws -> StatusServerConfiguration {
    try StatusServerConfiguration(
        host: "127.0.0.1", port: 0, token: token.map(Secret.init), alertWebhookURL: webhook.map(Secret.init),
        refreshSeconds: 10, snapshotMaxAge: .zero, watchdog: watchdog)
}

/// The status server's routes without a socket (HummingbirdTesting's `.router` framework), for tests that need no
/// real port: `base + "/path"` names a route, and `request` runs it through the whole middleware chain.
struct RouterBase: Sendable {
    let client: any TestClientProtocol
}

struct RouteTarget: Sendable {
    let client: any TestClientProtocol
    let path: String
}

func + (base: RouterBase, path: String) -> RouteTarget { RouteTarget(client: base.client, path: path) }

/// Runs `body` against the status application's router, built exactly as `status-server` builds it.
func withStatusRoutes<T: Sendable>(
    _ configuration: StatusServerConfiguration, client: PostgresClient, staging: (any ObjectStore)? = nil,
    _ body: @escaping @Sendable (RouterBase) async throws -> T
) async throws -> T {
    let app = buildStatusApplication(configuration: configuration, client: client, logger: logger, staging: staging)
    return try await app.test(.router) { testClient in try await body(RouterBase(client: testClient)) }
}

func request(_ target: RouteTarget, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil) async throws -> HTTPResult {
    var fields = HTTPFields()
    for (name, value) in headers {
        guard let fieldName = HTTPField.Name(name) else { throw TestFailure("bad header name \(name)") }
        fields.append(HTTPField(name: fieldName, value: value))
    }
    guard let routeMethod = HTTPRequest.Method(method.rawValue) else { throw TestFailure("bad method \(method)") }
    let response = try await target.client.executeRequest(
        uri: target.path, method: routeMethod, headers: fields, body: body.map { ByteBuffer(string: $0) })
    var converted = HTTPHeaders()
    for field in response.headers { converted.add(name: field.name.canonicalName, value: field.value) }
    return HTTPResult(status: Int(response.status.code), headers: converted, body: String(buffer: response.body), bytes: Array(buffer: response.body))
}
