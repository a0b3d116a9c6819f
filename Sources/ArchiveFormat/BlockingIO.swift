#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import NIOCore
import NIOPosix
import ObjectStore

/// Runs a blocking system call on NIO's thread pool, never on the cooperative pool or an event loop.
package func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}

/// A local file written in large blocks from async code: bytes collect in memory up to `flushSize`, then one
/// blocking `write` on the thread pool. Owned by one task at a time.
package final class BufferedFileWriter {
    package let path: String
    private let descriptor: Int32
    private var buffer: ByteBuffer
    private let flushSize: Int
    /// Bytes handed to `write` so far (flushed or not): the offset of the next byte in the file.
    package private(set) var offset: Int64 = 0
    private var closed = false

    package init(creating path: String, flushSize: Int = 1 << 20) throws(WorkerIOError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw WorkerIOError(operation: "create", path: path, errno: errno) }
        self.path = path
        self.descriptor = descriptor
        self.flushSize = flushSize
        self.buffer = ByteBufferAllocator().buffer(capacity: flushSize)
    }

    deinit {
        if !closed { close(descriptor) }
    }

    package func write(_ bytes: ByteBuffer) async throws {
        offset += Int64(bytes.readableBytes)
        var bytes = bytes
        buffer.writeBuffer(&bytes)
        if buffer.readableBytes >= flushSize { try await flush() }
    }

    package func write(_ bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    package func flush() async throws {
        guard buffer.readableBytes > 0 else { return }
        let pending = buffer
        buffer.clear()
        let descriptor = self.descriptor
        let path = self.path
        try await blocking {
            try pending.withUnsafeReadableBytes { raw in
                var written = 0
                while written < raw.count {
                    let result = Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw WorkerIOError(operation: "write", path: path, errno: errno)
                    }
                    written += result
                }
            }
        }
    }

    /// Cuts the file back to `length` bytes (drops a member whose bytes turned out wrong).
    package func truncate(to length: Int64) async throws {
        try await flush()
        let descriptor = self.descriptor
        let path = self.path
        try await blocking {
            guard ftruncate(descriptor, off_t(length)) == 0, lseek(descriptor, off_t(length), SEEK_SET) >= 0 else {
                throw WorkerIOError(operation: "truncate", path: path, errno: errno)
            }
        }
        offset = length
    }

    /// Flushes, syncs and closes.
    package func finish() async throws {
        try await flush()
        let descriptor = self.descriptor
        let path = self.path
        closed = true
        try await blocking {
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else { throw WorkerIOError(operation: "fsync", path: path, errno: errno) }
        }
    }
}

/// A local file operation that failed, with the system's reason.
public struct WorkerIOError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32

    package init(operation: String, path: String, errno code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String { "cannot \(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Runs `body` for every element with at most `limit` running at once; returns the results in input order.
package func concurrentMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], limit: Int, _ body: @escaping @Sendable (Element) async -> Result
) async -> [Result] {
    await withTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: elements.count)
        var next = 0
        for _ in 0..<min(limit, elements.count) {
            let index = next
            group.addTask { (index, await body(elements[index])) }
            next += 1
        }
        for await (index, result) in group {
            results[index] = result
            if next < elements.count {
                let index = next
                group.addTask { (index, await body(elements[index])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}

/// Writes a downloaded object's bytes to a local file (bounded memory) and returns their size and SHA-256.
package func saveToFile(_ body: ObjectByteStream, path: String) async throws -> (size: Int64, sha256: String) {
    let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
    var hasher = SHA256()
    for try await chunk in body {
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        try await writer.write(chunk)
    }
    try await writer.finish()
    return (writer.offset, hex(hasher.finalize()))
}
