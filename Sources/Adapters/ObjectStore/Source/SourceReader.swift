#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import SystemIO

/// Reads an ``ObjectSource`` front to back in pieces of a chosen size. Used by one task at a time.
final class SourceReader {
    private enum Backing {
        case file(fd: Int32, path: String)
        case bytes(ByteBuffer)
        case stream(any ChunkIterator, pending: ByteBuffer?)
    }

    let length: Int64
    private(set) var position: Int64 = 0
    private var backing: Backing
    private let label: String

    private init(length: Int64, backing: Backing, label: String) {
        self.length = length
        self.backing = backing
        self.label = label
    }

    static func open(_ source: ObjectSource) async throws -> SourceReader {
        switch source.storage {
        case .bytes(let buffer):
            return SourceReader(length: Int64(buffer.readableBytes), backing: .bytes(buffer), label: source.label)
        case .stream(let length, let open):
            return SourceReader(length: length, backing: .stream(open(), pending: nil), label: source.label)
        case .file(let path):
            do {
                let (fd, size) = try await blocking { () throws -> (Int32, Int64) in
                    let fd = try POSIXFile.openForReading(path)
                    do {
                        let info = try POSIXFile.status(fd: fd)
                        guard POSIXFile.isRegularFile(info) else {
                            throw ObjectStoreError(
                                .sourceUnreadable, operation: "read source", location: path,
                                message: "not a regular file")
                        }
                        return (fd, Int64(info.st_size))
                    } catch {
                        POSIXFile.closeFile(fd)
                        throw error
                    }
                }
                return SourceReader(length: size, backing: .file(fd: fd, path: path), label: path)
            } catch let error as ObjectStoreError {
                throw error
            } catch {
                throw ObjectStoreError(.sourceUnreadable, operation: "read source", location: path, message: "\(error)")
            }
        }
    }

    var remaining: Int64 { length - position }

    /// The next `count` bytes (fewer only at the announced end). Throws when the source ends early.
    /// A file source reads into `spare` when it is big enough and nobody else holds it, so that a multipart upload
    /// cycles through the same few part buffers instead of allocating (and faulting in) a new one per part.
    func read(_ count: Int, reusing spare: BufferHandoff? = nil) async throws -> ByteBuffer {
        let wanted = Int(min(Int64(count), remaining))
        var result: ByteBuffer
        switch backing {
        case .bytes(var buffer):
            result = buffer.readSlice(length: wanted)!
            backing = .bytes(buffer)
        case .file(let fd, let path):
            let offset = position
            do {
                result = try await blocking {
                    try POSIXFile.read(fd: fd, offset: offset, count: wanted, reusing: spare)
                }
            } catch {
                throw ObjectStoreError(.sourceUnreadable, operation: "read source", location: path, message: "\(error)")
            }
        case .stream(let iterator, let pending):
            result = ByteBufferAllocator().buffer(capacity: wanted)
            var leftover = pending
            while result.readableBytes < wanted {
                if var chunk = leftover {
                    let take = min(chunk.readableBytes, wanted - result.readableBytes)
                    var slice = chunk.readSlice(length: take)!
                    result.writeBuffer(&slice)
                    leftover = chunk.readableBytes > 0 ? chunk : nil
                    continue
                }
                let next = try await nextChunk(from: iterator)
                if next == nil, Task.isCancelled {
                    // Many streams simply end when their consumer is cancelled: that is not a short source.
                    throw ObjectStoreError(.cancelled, operation: "read source", location: label, message: "cancelled")
                }
                guard let next else { break }
                leftover = next
            }
            backing = .stream(iterator, pending: leftover)
        }
        guard result.readableBytes == wanted else {
            throw ObjectStoreError(
                .sourceChanged, operation: "read source", location: label,
                message: "the source ended after \(position + Int64(result.readableBytes)) of \(length) bytes")
        }
        position += Int64(wanted)
        return result
    }

    /// The next bytes as they come, at most `limit`: a stream's chunk is handed over as it is instead of being
    /// copied into a buffer of a chosen size. Throws when the source ends early.
    func readAvailable(upTo limit: Int, reusing spare: BufferHandoff? = nil) async throws -> ByteBuffer {
        guard case .stream(let iterator, let pending) = backing else { return try await read(limit, reusing: spare) }
        let wanted = Int(min(Int64(limit), remaining))
        if var chunk = pending, chunk.readableBytes > 0 {
            let slice = chunk.readSlice(length: min(wanted, chunk.readableBytes))!
            backing = .stream(iterator, pending: chunk.readableBytes > 0 ? chunk : nil)
            position += Int64(slice.readableBytes)
            return slice
        }
        let next = try await nextChunk(from: iterator)
        guard var chunk = next, chunk.readableBytes > 0 else {
            if Task.isCancelled {
                throw ObjectStoreError(.cancelled, operation: "read source", location: label, message: "cancelled")
            }
            if next != nil { return try await readAvailable(upTo: limit, reusing: spare) }  // an empty chunk: ask again
            throw ObjectStoreError(
                .sourceChanged, operation: "read source", location: label,
                message: "the source ended after \(position) of \(length) bytes")
        }
        let slice = chunk.readSlice(length: min(wanted, chunk.readableBytes))!
        backing = .stream(iterator, pending: chunk.readableBytes > 0 ? chunk : nil)
        position += Int64(slice.readableBytes)
        return slice
    }

    /// The stream's next chunk, its failure named as the source's (or as a cancellation).
    private func nextChunk(from iterator: any ChunkIterator) async throws -> ByteBuffer? {
        do {
            return try await iterator.next()
        } catch {
            if Task.isCancelled || error is CancellationError {
                throw ObjectStoreError(.cancelled, operation: "read source", location: label, message: "cancelled")
            }
            throw ObjectStoreError(.sourceUnreadable, operation: "read source", location: label, message: "\(error)")
        }
    }

    /// Throws when the source holds more bytes than announced (a file that grew, a stream that runs long).
    func verifyEnd() async throws {
        var extra = false
        switch backing {
        case .bytes:
            break
        case .file(let fd, _):
            let size = try? await blocking { Int64(try POSIXFile.status(fd: fd).st_size) }
            extra = size != length
        case .stream(let iterator, let pending):
            if let pending, pending.readableBytes > 0 {
                extra = true
            } else {
                while let chunk = try await iterator.next() {
                    if chunk.readableBytes > 0 { extra = true; break }
                }
            }
        }
        if extra {
            throw ObjectStoreError(
                .sourceChanged, operation: "read source", location: label,
                message: "the source changed size while it was read (expected \(length) bytes)")
        }
    }

    func close() {
        if case .file(let fd, _) = backing {
            POSIXFile.closeFile(fd)
            backing = .bytes(ByteBuffer())
        }
    }

    deinit { close() }
}
