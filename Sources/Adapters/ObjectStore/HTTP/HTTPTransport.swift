import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends one HTTP request. The seam between the S3 client and the network, so tests can count or fail requests.
protocol HTTPTransport: Sendable {
    func execute(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse
}

struct AsyncHTTPClientTransport: HTTPTransport {
    let client: HTTPClient

    func execute(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse {
        try await client.execute(request, deadline: deadline)
    }
}

/// The HTTP client the module uses unless the caller passes one.
///
/// Unlike `HTTPClient.shared` it never follows redirects (a signed request must not be replayed elsewhere) and never
/// decompresses (a GET must return the stored bytes exactly), and it notices a stalled connection within a minute
/// instead of waiting for the whole-request deadline. Like `HTTPClient.shared` it lives for the whole process, so
/// nobody has to shut it down.
public enum ObjectStoreHTTPClient {
    public static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: .seconds(60), write: .seconds(60)),
            connectionPool: .init(idleTimeout: .seconds(60)),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()
}

/// A fully received small response (XML documents, metadata answers).
struct CollectedResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer

    var data: Data { Data(body.readableBytesView) }
}

extension HTTPClientResponse {
    func collected(limit: Int = 8 << 20) async throws -> CollectedResponse {
        CollectedResponse(status: status, headers: headers, body: try await body.collect(upTo: limit))
    }
}
