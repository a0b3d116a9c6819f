import Foundation
import NIOCore
import PipelineCore
import SystemIO

/// The partial files of open browser uploads: `<directory>/<id>.part`, written at the acknowledged offset. Every
/// call blocks, so each runs on the thread pool (`blocking`).
///
/// The catalog's `received` is the truth: bytes past it were written but never acknowledged (the server died
/// between its write and its row) and are cut off; a file shorter than it lost bytes (a new disk) and the catalog is
/// rewound to what the file holds (``reconcile``), so a client always continues from bytes that are really here.
struct PartialUploads: Sendable {
    let directory: String
    let writeBufferBytes: Int

    /// Upload ids are 32 lower-case hex digits: nothing else ever reaches a path.
    static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }

    func path(_ id: String) -> String {
        precondition(Self.isValidID(id), "upload ids are checked before they name a file")
        return directory + "/" + id + ".part"
    }

    /// An empty partial file, durable (its directory synced) before the upload's row exists.
    func create(_ id: String) async throws {
        let path = path(id), directory = directory
        try await blocking {
            try POSIXFile.makeDirectories(directory)
            let fd = try POSIXFile.openForWriting(path)
            defer { POSIXFile.closeFile(fd) }
            try POSIXFile.truncate(fd: fd, to: 0, path: path)
            try POSIXFile.sync(fd: fd)
            try POSIXFile.syncDirectory(directory)
        }
    }

    /// The bytes the partial file holds (nil: there is none).
    func size(_ id: String) async throws -> Int64? {
        let path = path(id)
        return try await blocking { try POSIXFile.status(path: path).map { Int64($0.st_size) } }
    }

    /// Makes the file hold exactly the acknowledged bytes, when it can: longer is cut to `received` (synced); shorter
    /// or missing is recreated as far as it goes. Returns the offset the upload really has.
    func reconcile(_ id: String, received: Int64) async throws -> Int64 {
        let path = path(id), directory = directory
        return try await blocking {
            try POSIXFile.makeDirectories(directory)
            let existing = try POSIXFile.status(path: path).map { Int64($0.st_size) }
            if existing == received { return received }
            let fd = try POSIXFile.openForWriting(path)
            defer { POSIXFile.closeFile(fd) }
            let kept = min(existing ?? 0, received)
            try POSIXFile.truncate(fd: fd, to: kept, path: path)
            try POSIXFile.sync(fd: fd)
            if existing == nil { try POSIXFile.syncDirectory(directory) }
            return kept
        }
    }

    func remove(_ id: String) async throws {
        let path = path(id), directory = directory
        try await blocking {
            try POSIXFile.removeFile(path)
            try POSIXFile.syncDirectory(directory)
        }
    }

    /// Bytes still free for partial files.
    func availableBytes() async throws -> Int64 {
        let directory = directory
        return try await blocking {
            try POSIXFile.makeDirectories(directory)
            return try POSIXFile.availableBytes(onFileSystemOf: directory)
        }
    }

    /// What one request body did to the partial file.
    enum Append: Sendable {
        /// Every byte of the body was written and synced.
        case complete(written: Int64)
        /// The body broke off (the connection dropped): what arrived before was written and synced, and is kept.
        case brokeOff(written: Int64, error: any Error)
        /// The body went past `limit`: nothing of it is kept (the file is cut back to where it was).
        case tooLong
    }

    /// Writes `body` at `offset`, gathering up to `writeBufferBytes` before each write (bounded memory whatever the
    /// body's size), and syncs the file before returning, so that the caller may acknowledge what it reports.
    func append<Body: AsyncSequence>(_ id: String, at offset: Int64, limit: Int64, body: Body) async throws -> Append where Body.Element == ByteBuffer {
        let path = path(id)
        let fd = try await blocking { try POSIXFile.openForWriting(path) }
        defer { POSIXFile.closeFile(fd) }
        var pending = ByteBufferAllocator().buffer(capacity: min(writeBufferBytes, Int(clamping: max(limit, 0))))
        var written: Int64 = 0
        func flush() async throws {
            guard pending.readableBytes > 0 else { return }
            let handoff = BufferHandoff(pending)
            let at = offset + written
            let count = Int64(pending.readableBytes)
            pending = try await blocking {
                var buffer = handoff.take()!
                try buffer.withUnsafeReadableBytes { try POSIXFile.writeAll(fd: fd, $0, at: at, path: path) }
                // The disk writes while the next bytes arrive, so the fsync before the answer waits for the tail only.
                POSIXFile.startWriteback(fd: fd, offset: at, length: count)
                buffer.clear()
                return buffer
            }
            written += count
        }
        do {
            for try await chunk in body {
                guard written + Int64(pending.readableBytes) + Int64(chunk.readableBytes) <= limit else {
                    try await blocking {
                        try POSIXFile.truncate(fd: fd, to: offset, path: path)
                        try POSIXFile.sync(fd: fd)
                    }
                    return .tooLong
                }
                var chunk = chunk
                pending.writeBuffer(&chunk)
                if pending.readableBytes >= writeBufferBytes { try await flush() }
            }
            try await flush()
            try await blocking { try POSIXFile.sync(fd: fd) }
            return .complete(written: written)
        } catch let error as FileIOError {
            throw error
        } catch {
            // The body broke off: keep what arrived, durably, so the client loses less than the chunk.
            try await flush()
            try await blocking { try POSIXFile.sync(fd: fd) }
            return .brokeOff(written: written, error: error)
        }
    }
}

/// One request at a time per upload, in this process: a PATCH, DELETE or the storer holds the upload while it
/// works; another request for it meanwhile is answered 423 (the client asks the offset again and goes on).
actor UploadLocks {
    private var held: Set<String> = []

    func tryLock(_ id: String) -> Bool { held.insert(id).inserted }
    func unlock(_ id: String) { held.remove(id) }

    /// Runs `body` holding `id`, or returns nil at once when someone else holds it.
    func withLock<T: Sendable>(_ id: String, _ body: @Sendable () async throws -> T) async rethrows -> T? {
        guard tryLock(id) else { return nil }
        defer { held.remove(id) }
        return try await body()
    }
}
