#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArchiveFormat
import Foundation
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

/// An archive object read as it arrives by a synchronous reader (zstd, then tar), without a copy of the whole
/// object on disk first: the GET's body goes into one end of a socket pair, and the reader runs on a thread of
/// its own on the other end. The kernel's socket buffer bounds memory and gives back-pressure; the reader's thread
/// is not one of NIO's blocking pool, so any number of streams at once cannot starve the pool that writes into
/// them. A body cut mid-way is fetched again from the first byte not yet passed on (a ranged GET), a few times.
/// Each member the reader writes is checked against its own SHA-256 before it is committed, so no copy of the
/// whole object is needed to trust what is restored.
enum BundleStream {
    struct Outcome<Value: Sendable>: Sendable {
        /// What the reader returned (or threw).
        var value: Result<Value, any Error>
        /// Bytes fetched from the archive.
        var fetched: Int64
        /// Why the object could not be fetched to its end, when it could not; the reader then saw it end early.
        var fetchError: (any Error)?
    }

    static let fetchAttempts = 3

    /// Streams `key` (of `size` bytes, when known) into `read`, which is handed a reader of its bytes and runs on
    /// a thread of its own. When `read` returns before the end (it has what it wanted), the rest is not fetched.
    static func read<Value: Sendable>(
        _ key: String, size: Int64?, from archive: any ObjectStore, _ read: @escaping @Sendable (any ChunkReader) throws -> Value
    ) async -> Outcome<Value> {
        var descriptors: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors) == 0 else {
            return Outcome(value: .failure(FileIOError(operation: "socketpair", path: key, errno: errno)), fetched: 0, fetchError: nil)
        }
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        let label = "the stream of \(key)"
        let reading = Task<Result<Value, any Error>, Never> {
            await withCheckedContinuation { continuation in
                let thread = Thread {
                    // The reader owns the read end and closes it when done, which tells the writer to stop.
                    let result = Result { () throws -> Value in
                        let stream: PlainFileReader
                        do { stream = try PlainFileReader(descriptor: readEnd, path: label) } catch {
                            close(readEnd)  // else the writer would wait for ever on a reader that never came
                            throw error
                        }
                        return try read(stream)
                    }
                    continuation.resume(returning: result)
                }
                thread.name = "restore-bundle-reader"
                thread.start()
            }
        }
        var fetched: Int64 = 0
        var fetchError: (any Error)?
        var readerStopped = false
        for attempt in 1...fetchAttempts where !readerStopped {
            do {
                let range = fetched > 0 ? size.map { ByteRange(first: fetched, last: $0 - 1) } : nil
                if fetched > 0 && range == nil { throw RestoreError(.objectMissing, "\(key): cut mid-way and its size is not recorded, so it cannot be resumed") }
                for try await chunk in try await archive.get(key, range: range).body {
                    guard try await blocking({ try sendAll(writeEnd, chunk) }) else {
                        readerStopped = true
                        break
                    }
                    fetched += Int64(chunk.readableBytes)
                }
                fetchError = nil
                break
            } catch {
                fetchError = error
                // Only a body cut mid-way is fetched again: a GET refused outright (not restored yet, missing) has
                // had the store's own retries already.
                if attempt == fetchAttempts || fetched == 0 || error is RestoreError || error is FileIOError { break }
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
        shutdown(writeEnd, Int32(SHUT_WR))
        close(writeEnd)
        return Outcome(value: await reading.value, fetched: fetched, fetchError: fetchError)
    }

    /// Sends every byte of `chunk`; false when the reader has closed its end (it needs no more).
    static func sendAll(_ descriptor: Int32, _ chunk: ByteBuffer) throws -> Bool {
        try chunk.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return true }
            var sent = 0
            while sent < raw.count {
                let result = send(descriptor, base + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if result < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EPIPE || code == ECONNRESET { return false }
                    throw FileIOError(operation: "send", path: "a restore stream", errno: code)
                }
                sent += result
            }
            return true
        }
    }
}
