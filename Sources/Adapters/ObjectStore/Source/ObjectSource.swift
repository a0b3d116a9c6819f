#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import SystemIO

/// The bytes of an object to write: a file, bytes in memory, or a stream of known length.
///
/// The length must be known up front (S3 needs it, and it decides single request versus multipart). A stream
/// that ends early or runs long fails the write with ``ObjectStoreError/Kind-swift.struct/sourceChanged``.
public struct ObjectSource: Sendable {
    enum Storage: Sendable {
        case file(path: String)
        case bytes(ByteBuffer)
        case stream(length: Int64, open: @Sendable () -> any ChunkIterator)
    }

    let storage: Storage

    /// A regular file, read in parts on NIO's thread pool (never on an event loop or the cooperative pool).
    public static func file(_ path: String) -> ObjectSource { ObjectSource(storage: .file(path: path)) }

    public static func bytes(_ buffer: ByteBuffer) -> ObjectSource { ObjectSource(storage: .bytes(buffer)) }

    public static func bytes(_ bytes: [UInt8]) -> ObjectSource { ObjectSource(storage: .bytes(ByteBuffer(bytes: bytes))) }

    /// An async sequence of buffers (a pipe, a transcoder's output, a disc being imaged) of exactly `length` bytes.
    /// It is iterated once, so a multipart upload resumed later needs a new source of the same bytes.
    public static func stream<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, length: Int64) -> ObjectSource
    where Chunks.Element == ByteBuffer {
        precondition(length >= 0, "a stream's length cannot be negative")
        return ObjectSource(storage: .stream(length: length, open: { AsyncChunkIterator(chunks.makeAsyncIterator()) }))
    }

    /// How many bytes the source holds, when that is known without touching the disk (nil for a file).
    public var declaredLength: Int64? {
        switch storage {
        case .file: nil
        case .bytes(let buffer): Int64(buffer.readableBytes)
        case .stream(let length, _): length
        }
    }

    /// How many bytes the source holds: the declared length, or a file's size as the file system says now (asked on
    /// the thread pool; 0 for a file that is not there, whose read then fails as usual).
    public func length() async throws -> Int64 {
        if let declaredLength { return declaredLength }
        guard case .file(let path) = storage else { return 0 }
        return try await blocking { try POSIXFile.status(path: path).map { Int64($0.st_size) } ?? 0 }
    }

    /// Describes the source in errors and logs.
    var label: String {
        switch storage {
        case .file(let path): path
        case .bytes: "bytes in memory"
        case .stream: "stream"
        }
    }
}

protocol ChunkIterator: AnyObject {
    func next() async throws -> ByteBuffer?
}

private final class AsyncChunkIterator<Base: AsyncIteratorProtocol>: ChunkIterator where Base.Element == ByteBuffer {
    var base: Base
    init(_ base: Base) { self.base = base }
    func next() async throws -> ByteBuffer? { try await base.next() }
}
