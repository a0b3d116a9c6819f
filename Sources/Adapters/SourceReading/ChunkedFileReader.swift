#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import SystemIO

/// How files are read: chunk size (memory per file is about two chunks with read-ahead) and how often a failed
/// read is tried again before the file is given up as unreadable.
public struct ChunkedReadConfiguration: Sendable, Hashable {
    /// Bytes per chunk. 1 MiB: large enough for disc throughput, small enough to bound memory per file.
    public var chunkSize: Int
    /// Extra attempts at a chunk after its first read failed (a scratched disc often succeeds on a re-read).
    public var retries: Int
    /// Pause before each retry, so a drive that is recalibrating gets a moment.
    public var retryDelay: Duration
    /// Read the next chunk while the caller is busy with the current one (hashing, uploading).
    public var readAhead: Bool

    public init(chunkSize: Int = 1 << 20, retries: Int = 3, retryDelay: Duration = .milliseconds(250), readAhead: Bool = true) {
        self.chunkSize = chunkSize
        self.retries = retries
        self.retryDelay = retryDelay
        self.readAhead = readAhead
    }
}

/// One open file read by position. Calls are blocking and are made on the thread pool. This is the seam where
/// tests inject EIO; ``DescriptorFile`` is the real implementation.
public protocol PositionalFile: Sendable {
    /// Reads up to `buffer.count` bytes at `offset`; 0 means end of file. Throws an ``IngestError`` with the errno.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Tells the kernel the bytes in this range (length 0: to the end) will not be read again, so their page
    /// cache can be reused at once. Advisory; nothing happens where it is not supported.
    func dropCachedPages(offset: Int64, length: Int64)
    func close()
}

extension PositionalFile {
    public func dropCachedPages(offset: Int64, length: Int64) {}
}

/// A file descriptor opened read-only (no symlinks followed at the last component), read with `pread`.
public final class DescriptorFile: PositionalFile {
    public let path: RawPath
    private let fd: Int32

    /// Opens `path` read-only. Blocking: call it from the thread pool (``ChunkedFileReader`` does).
    public init(opening path: RawPath) throws {
        self.path = path
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        guard fd >= 0 else { throw IngestError.system(.cannotOpen, path: path.string, errno: errno, "cannot open") }
        self.fd = fd
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        while true {
            let count = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw IngestError.system(.readFailed, path: path.string, errno: errno, "read failed at offset \(offset)")
        }
    }

    /// True when the whole range lies in a hole of the file (``SparseRead/isHole(fd:offset:count:)``). Asked by the
    /// disc imager only: an ordinary file's reads never take a hole's word for its bytes, so a file system that
    /// misreports holes while a file is written (OpenZFS 2.2.0 did) cannot turn a file being uploaded into zeros.
    public func isHole(offset: Int64, count: Int) -> Bool { SparseRead.isHole(fd: fd, offset: offset, count: count) }

    /// The size the file has now (`fstat`), for a descriptor opened on a regular file or a block device.
    public func currentSize() throws -> Int64 {
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { throw IngestError.system(.readFailed, path: path.string, errno: errno, "cannot find the size") }
        return Int64(end)
    }

    public func dropCachedPages(offset: Int64, length: Int64) {
        #if os(Linux)
        _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_DONTNEED)
        #endif
    }

    public func close() { closeDescriptor(fd) }
}

/// The bytes of one file as an async sequence of chunks (``ChunkedReadConfiguration/chunkSize`` each, the last one
/// shorter), read with `pread` on NIO's thread pool. Iterate it once; it can be handed to the object store as a
/// stream source. A chunk whose read fails is tried again ``ChunkedReadConfiguration/retries`` times; after that
/// the iteration throws ``IngestError`` `.readFailed` naming the path, the offset and the errno text.
///
/// With `expectedSize` (the size the walker saw), a file that turns out longer or shorter throws `.sourceChanged`
/// instead of delivering bytes that do not match the size already announced.
public struct ChunkedFileReader: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    public let path: String
    public let expectedSize: Int64?
    public let configuration: ChunkedReadConfiguration
    private let opener: @Sendable () throws -> any PositionalFile

    public init(path: RawPath, expectedSize: Int64? = nil, configuration: ChunkedReadConfiguration = .init()) {
        self.init(path: path.string, expectedSize: expectedSize, configuration: configuration) {
            try DescriptorFile(opening: path)
        }
    }

    /// Reads whatever `open` returns (tests: a file that fails chosen reads).
    public init(
        path: String, expectedSize: Int64? = nil, configuration: ChunkedReadConfiguration = .init(),
        open: @escaping @Sendable () throws -> any PositionalFile
    ) {
        precondition(configuration.chunkSize > 0, "chunkSize must be positive")
        self.path = path
        self.expectedSize = expectedSize
        self.configuration = configuration
        self.opener = open
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(state: ReaderState(path: path, expectedSize: expectedSize, configuration: configuration, opener: opener))
    }

    /// Reads the whole file through `body`, chunk by chunk, and returns its size and SHA-256.
    public func forEachChunk(_ body: (ByteBuffer) async throws -> Void) async throws -> (size: Int64, sha256: String) {
        var hash = SHA256Stream()
        for try await chunk in self {
            hash.update(chunk)
            try await body(chunk)
        }
        return (hash.byteCount, hash.finalize())
    }

    /// Size and SHA-256 of the file, reading it once (the dedupe check before deciding to upload).
    public func sha256() async throws -> (size: Int64, sha256: String) {
        try await forEachChunk { _ in }
    }

    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let state: ReaderState
        public mutating func next() async throws -> ByteBuffer? { try await state.next() }
    }
}

/// The open file, the offset and at most one chunk being read ahead. Used by one consumer at a time (an
/// iterator is not shared), hence `@unchecked Sendable`.
final class ReaderState: @unchecked Sendable {
    let path: String
    let expectedSize: Int64?
    let configuration: ChunkedReadConfiguration
    let opener: @Sendable () throws -> any PositionalFile
    private var file: (any PositionalFile)?
    private var offset: Int64 = 0
    private var finished = false
    /// The last read came back short: the file ended there, so no further read is needed to find out.
    private var reachedEnd = false
    private var pending: Task<ByteBuffer?, any Error>?
    /// The chunk handed out last. When the next one is read, the consumer is done with this one, so its memory is
    /// read into again instead of a new buffer being allocated (and its pages faulted in) for every chunk.
    private var lastHandedOut: ByteBuffer?

    init(path: String, expectedSize: Int64?, configuration: ChunkedReadConfiguration, opener: @escaping @Sendable () throws -> any PositionalFile) {
        self.path = path
        self.expectedSize = expectedSize
        self.configuration = configuration
        self.opener = opener
    }

    deinit {
        // A read-ahead task holds this object until it has finished, so no read can still be using the descriptor.
        file?.close()
    }

    func next() async throws -> ByteBuffer? {
        if finished { return nil }
        do {
            try Task.checkCancellation()
            let chunk: ByteBuffer?
            if file == nil {
                // Opened and read in one call on the thread pool: a small file is then read with one hop, not two.
                let (opener, count) = (self.opener, readSize(at: 0))
                let (opened, first) = try await blocking { () throws -> (any PositionalFile, Result<ByteBuffer, IngestError>) in
                    let file = try opener()
                    do {
                        return (file, .success(try Self.fill(file, at: 0, count: count, reusing: SpareBuffer(none: ()))))
                    } catch let error as IngestError where error.code == .readFailed {
                        return (file, .failure(error))  // tried again below, as any failed read
                    } catch {
                        file.close()
                        throw error
                    }
                }
                file = opened
                switch first {
                case .success(let buffer): chunk = buffer.readableBytes == 0 ? nil : buffer
                case .failure(let error):
                    guard configuration.retries > 0 else { throw IngestError(.readFailed, path: path, errno: error.errno, error.message) }
                    chunk = try await readChunk(opened, at: 0, count: count, reusing: SpareBuffer(none: ()), droppingCacheBefore: 0, attemptsMade: 1)
                }
            } else if reachedEnd {
                chunk = nil
            } else if let pending {
                self.pending = nil
                chunk = try await pending.value
            } else if let file {
                // Asked for the next chunk, the consumer is done with everything handed out so far.
                chunk = try await readChunk(file, at: offset, count: readSize(at: offset), reusing: SpareBuffer(takingFrom: &lastHandedOut),
                                            droppingCacheBefore: offset)
            } else {
                return nil
            }
            guard let file else { return nil }
            guard let chunk else {
                try checkSize(final: true)
                finish()
                return nil
            }
            let asked = readSize(at: offset)
            // By the time the read-ahead runs, the consumer is done with everything before this chunk.
            let chunkStart = offset
            offset += Int64(chunk.readableBytes)
            try checkSize(final: false)
            if chunk.readableBytes < asked {
                reachedEnd = true
            } else if configuration.readAhead {
                let nextOffset = offset
                let count = readSize(at: nextOffset)
                let spare = SpareBuffer(takingFrom: &lastHandedOut)
                // The task gets the file, offset and spare buffer as values; it touches no mutable state of this object.
                pending = Task { try await self.readChunk(file, at: nextOffset, count: count, reusing: spare, droppingCacheBefore: chunkStart) }
            }
            lastHandedOut = chunk
            return chunk
        } catch {
            finish()
            throw error
        }
    }

    private func finish() {
        finished = true
        file?.dropCachedPages(offset: 0, length: 0)
        pending?.cancel()
        if let pending {
            // Close only after the read-ahead's pread returned: closing under it could let the descriptor number be
            // reused by another open file and the read land there.
            let file = self.file
            Task.detached { _ = try? await pending.value; file?.close() }
        } else {
            file?.close()
        }
        pending = nil
        file = nil
    }

    /// Bytes to ask for at `offset`: a chunk, or (when the size is known) what is left plus one byte, so that a
    /// short read proves the end, a longer file shows itself, and a small file gets a buffer of its own size.
    private func readSize(at offset: Int64) -> Int {
        guard let expectedSize else { return configuration.chunkSize }
        return Int(min(Int64(configuration.chunkSize), max(0, expectedSize - offset) + 1))
    }

    private func checkSize(final: Bool) throws {
        guard let expectedSize else { return }
        if offset > expectedSize || (final && offset != expectedSize) {
            throw IngestError(.sourceChanged, path: path, "the file changed while it was read: expected \(expectedSize) bytes, found \(final ? "\(offset)" : "more")")
        }
    }

    /// One chunk at `offset` (nil at end of file), with the retries.
    /// `droppingCacheBefore`: the file up to there was consumed, so its page cache is dropped on the way (off the
    /// cooperative pool). Reading a disc's worth of data then recycles the same few pages instead of filling memory
    /// with cache nobody reads again (on the benchmark VM, four 384 MiB files: 3-4 s of system time without, 0.5 s
    /// with). The range always starts at 0: a range that ends inside a large folio of the page cache drops nothing
    /// of it, so each drop covers what an earlier one could not.
    /// `attemptsMade`: reads of this chunk that already failed (the first one, made with the open).
    private func readChunk(
        _ file: any PositionalFile, at offset: Int64, count chunkSize: Int, reusing spare: SpareBuffer,
        droppingCacheBefore consumedEnd: Int64, attemptsMade: Int = 0
    ) async throws -> ByteBuffer? {
        var attempt = attemptsMade
        if attemptsMade > 0 { try await Task.sleep(for: configuration.retryDelay) }
        while true {
            attempt += 1
            do {
                let firstAttempt = attempt == 1
                let chunk = try await blocking {
                    if consumedEnd > 0, firstAttempt { file.dropCachedPages(offset: 0, length: consumedEnd) }
                    return try Self.fill(file, at: offset, count: chunkSize, reusing: spare)
                }
                return chunk.readableBytes == 0 ? nil : chunk
            } catch let error as IngestError where error.code == .readFailed {
                guard attempt <= configuration.retries else {
                    let message = attempt > 1 ? "\(error.message) (after \(attempt) attempts)" : error.message
                    throw IngestError(.readFailed, path: path, errno: error.errno, message)
                }
                try await Task.sleep(for: configuration.retryDelay)
            }
        }
    }

    /// Reads until the chunk is full or the file ends (pread may return less than asked without being at the end).
    private static func fill(_ file: any PositionalFile, at offset: Int64, count: Int, reusing spare: SpareBuffer) throws -> ByteBuffer {
        var buffer = spare.take() ?? ByteBufferAllocator().buffer(capacity: count)
        // Keeps the memory when nobody else holds it any more; otherwise allocates anew (copy-on-write).
        buffer.clear()
        if buffer.capacity < count { buffer = ByteBufferAllocator().buffer(capacity: count) }
        var total = 0
        while total < count {
            let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - total) { pointer in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: pointer[0..<(count - total)]), at: offset + Int64(total))
            }
            if got == 0 { break }
            total += got
        }
        return buffer
    }
}

/// Moves a buffer into a read task without a second reference staying behind, so the read can reuse its memory.
final class SpareBuffer: @unchecked Sendable {
    private var buffer: ByteBuffer?

    init(takingFrom slot: inout ByteBuffer?) {
        buffer = slot
        slot = nil
    }

    /// No buffer to reuse.
    init(none: Void) {}

    func take() -> ByteBuffer? {
        defer { buffer = nil }
        return buffer
    }
}
