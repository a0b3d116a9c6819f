import Hummingbird
import NIOCore

/// The status server's request context: Hummingbird's basic one plus the client's address (for the login rate limit
/// and the tracing middleware).
public struct StatusRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
