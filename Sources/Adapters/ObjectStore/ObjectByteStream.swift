import Crypto
import NIOCore

/// The bytes of a GET, delivered with back-pressure: the next chunk is fetched only when the consumer asks for it.
/// Iterate it once.
public struct ObjectByteStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let makeIterator: @Sendable () -> any ChunkIterator

    init(makeIterator: @escaping @Sendable () -> any ChunkIterator) {
        self.makeIterator = makeIterator
    }

    init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == ByteBuffer {
        self.makeIterator = { BaseIterator(base.makeAsyncIterator()) }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let base: any ChunkIterator
        public mutating func next() async throws -> ByteBuffer? { try await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: makeIterator()) }

    /// Collects everything into one buffer; for small objects only.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        for try await var chunk in self {
            guard result.readableBytes + chunk.readableBytes <= limit else {
                throw ObjectStoreError(
                    .invalidArgument, operation: "GET", location: "body",
                    message: "the body is larger than the \(limit)-byte limit")
            }
            result.writeBuffer(&chunk)
        }
        return result
    }
}

private final class BaseIterator<Base: AsyncIteratorProtocol>: ChunkIterator where Base.Element == ByteBuffer {
    var base: Base
    init(_ base: Base) { self.base = base }
    func next() async throws -> ByteBuffer? { try await base.next() }
}

// MARK: - Hashing helpers shared by both stores

extension SHA256 {
    mutating func update(buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update(bufferPointer: $0) }
    }

    static func hash(buffer: ByteBuffer) -> SHA256.Digest {
        var hasher = SHA256()
        hasher.update(buffer: buffer)
        return hasher.finalize()
    }
}

extension ObjectByteStream {
    /// Bytes already in memory (read ahead by the caller), delivered as one chunk.
    public init(bytes: [UInt8]) {
        let buffer = ByteBuffer(bytes: bytes)
        self.init(makeIterator: { SingleChunkIterator(buffer) })
    }
}

private final class SingleChunkIterator: ChunkIterator {
    private var buffer: ByteBuffer?
    init(_ buffer: ByteBuffer) { self.buffer = buffer }
    func next() async throws -> ByteBuffer? {
        defer { buffer = nil }
        return buffer
    }
}
