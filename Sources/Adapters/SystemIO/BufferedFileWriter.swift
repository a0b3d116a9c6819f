#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A local file written in large blocks from async code: bytes collect in memory up to `flushSize`, then one
/// blocking `write` on the thread pool. Owned by one task at a time.
public final class BufferedFileWriter {
    public let path: String
    private let descriptor: Int32
    private var buffer: ByteBuffer
    private let flushSize: Int
    /// Bytes handed to `write` so far (flushed or not): the offset of the next byte in the file.
    public private(set) var offset: Int64 = 0
    private var closed = false

    public init(creating path: String, flushSize: Int = 1 << 20) throws(FileIOError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FileIOError(operation: "create", path: path, errno: errno) }
        self.path = path
        self.descriptor = descriptor
        self.flushSize = flushSize
        self.buffer = ByteBufferAllocator().buffer(capacity: flushSize)
    }

    deinit {
        if !closed { close(descriptor) }
    }

    public func write(_ bytes: ByteBuffer) async throws {
        offset += Int64(bytes.readableBytes)
        var bytes = bytes
        buffer.writeBuffer(&bytes)
        if buffer.readableBytes >= flushSize { try await flush() }
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    public func flush() async throws {
        guard buffer.readableBytes > 0 else { return }
        let pending = buffer
        buffer.clear()
        let descriptor = self.descriptor
        let path = self.path
        try await blocking {
            try pending.withUnsafeReadableBytes { raw in try POSIXFile.writeAll(fd: descriptor, raw, path: path) }
        }
    }

    /// Cuts the file back to `length` bytes (drops a member whose bytes turned out wrong).
    public func truncate(to length: Int64) async throws {
        try await flush()
        let descriptor = self.descriptor
        let path = self.path
        try await blocking {
            guard ftruncate(descriptor, off_t(length)) == 0, lseek(descriptor, off_t(length), SEEK_SET) >= 0 else {
                throw FileIOError(operation: "truncate", path: path, errno: errno)
            }
        }
        offset = length
    }

    /// Flushes, syncs and closes.
    public func finish() async throws {
        try await flush()
        let descriptor = self.descriptor
        let path = self.path
        closed = true
        try await blocking {
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else { throw FileIOError(operation: "fsync", path: path, errno: errno) }
        }
    }
}
