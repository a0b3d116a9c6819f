import Foundation
import Hummingbird
import ServiceLifecycle

/// A loopback HTTP server standing in for Slack/Discord/ntfy/any webhook: records every request, and can be told
/// to fail the first few with a 500.
public actor WebhookInbox {
    public struct Received: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: String
        public var at: ContinuousClock.Instant
    }

    public private(set) var received: [Received] = []
    private var failuresLeft: Int

    public init(failFirst: Int = 0) { failuresLeft = failFirst }

    func record(_ item: Received) -> Bool {
        received.append(item)
        if failuresLeft > 0 {
            failuresLeft -= 1
            return false
        }
        return true
    }

    /// Waits until at least `count` requests arrived (or `timeout` passed) and returns what arrived.
    public func wait(for count: Int, timeout: Duration) async -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while received.count < count && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        return received
    }
}

public func withWebhookReceiver<T: Sendable>(failFirst: Int = 0, _ body: (String, WebhookInbox) async throws -> T) async throws -> T {
    let inbox = WebhookInbox(failFirst: failFirst)
    let router = Router()
    router.post("/**") { request, _ -> Response in
        var request = request
        let bytes = try await request.collectBody(upTo: 1024 * 1024)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        let ok = await inbox.record(.init(path: request.uri.path, headers: headers, body: String(buffer: bytes), at: .now))
        return Response(status: ok ? .ok : .internalServerError)
    }
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }, logger: TestEnvironment.logger)
    return try await withRunningService(app, port: ports) { port in try await body("http://127.0.0.1:\(port)", inbox) }
}

/// Runs `service` (an HTTP server that yields its port to `ports` once it listens) for the duration of `body`,
/// which gets the port; the service is shut down gracefully afterwards, whether `body` threw or not.
public func withRunningService<T: Sendable>(_ service: some Service, port ports: AsyncStream<Int>, _ body: (Int) async throws -> T) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: [service], logger: TestEnvironment.logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw WebhookReceiverDidNotStart() }
        do {
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

struct WebhookReceiverDidNotStart: Error, CustomStringConvertible {
    var description: String { "the loopback server did not start" }
}
