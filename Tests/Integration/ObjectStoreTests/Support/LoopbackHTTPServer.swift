import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SystemIO

/// A request the loopback server received, body included.
struct RecordedRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: [UInt8]

    var path: String { String(uri.prefix { $0 != "?" }) }
    var query: String { uri.contains("?") ? String(uri.drop { $0 != "?" }.dropFirst()) : "" }
}

/// What the server does with a request.
enum ScriptedResponse: Sendable {
    case respond(status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8] = [])
    /// Closes the connection without answering (what a reset or a crashed proxy looks like to the client).
    case closeConnection
    /// Sends the head with the full Content-Length but only the first `sentBytes` of the body, then closes.
    case truncatedBody(status: HTTPResponseStatus, headers: [(String, String)], body: [UInt8], sentBytes: Int)

    static func xml(_ status: HTTPResponseStatus, _ text: String, headers: [(String, String)] = []) -> ScriptedResponse {
        .respond(status: status, headers: [("Content-Type", "application/xml")] + headers, body: Array(text.utf8))
    }

    static func s3Error(_ status: HTTPResponseStatus, code: String, message: String) -> ScriptedResponse {
        .xml(status, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>\(message)</Message>"
            + "<RequestId>TEST123</RequestId></Error>")
    }
}

/// An HTTP/1.1 server on 127.0.0.1 whose answers a test scripts; it records every request.
final class LoopbackHTTPServer: Sendable {
    private let channel: any Channel
    private let recorded: LockedBox<[RecordedRequest]>
    let port: Int

    var endpoint: String { "http://127.0.0.1:\(port)" }
    var requests: [RecordedRequest] { recorded.withLock { $0 } }

    init(handler: @escaping @Sendable (RecordedRequest, Int) -> ScriptedResponse) async throws {
        let recorded = LockedBox<[RecordedRequest]>([])
        self.recorded = recorded
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        ScriptedHandler(recorded: recorded, handler: handler))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
    }

    func shutdown() async {
        try? await channel.close()
    }
}

private final class ScriptedHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let recorded: LockedBox<[RecordedRequest]>
    let handler: @Sendable (RecordedRequest, Int) -> ScriptedResponse
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(recorded: LockedBox<[RecordedRequest]>, handler: @escaping @Sendable (RecordedRequest, Int) -> ScriptedResponse) {
        self.recorded = recorded
        self.handler = handler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            let request = RecordedRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)
            let index = recorded.withLock { requests in
                requests.append(request)
                return requests.count - 1
            }
            respond(handler(request, index), context: context, keepAlive: head.isKeepAlive)
        }
    }

    private func respond(_ response: ScriptedResponse, context: ChannelHandlerContext, keepAlive: Bool) {
        switch response {
        case .closeConnection:
            context.close(promise: nil)
        case .respond(let status, let headers, let body):
            var responseHeaders = HTTPHeaders(headers)
            // A HEAD answer names the object's length without a body; any other answer's length is its body's.
            if !(body.isEmpty && responseHeaders.contains(name: "Content-Length")) {
                responseHeaders.replaceOrAdd(name: "Content-Length", value: String(body.count))
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status,
                                                                 headers: responseHeaders))), promise: nil)
            if !body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            }
            let close = !keepAlive
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if close { bound.value.close(promise: nil) }
            }
        case .truncatedBody(let status, let headers, let body, let sentBytes):
            var responseHeaders = HTTPHeaders(headers)
            responseHeaders.replaceOrAdd(name: "Content-Length", value: String(body.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status,
                                                                 headers: responseHeaders))), promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body.prefix(sentBytes))))))
                .whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
