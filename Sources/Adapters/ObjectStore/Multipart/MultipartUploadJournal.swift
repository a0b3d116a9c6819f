import Foundation
import NIOCore
import NIOFoundationCompat
import SystemIO

/// Where a multipart upload keeps its progress so that a later run can resume it instead of starting over.
///
/// One journal belongs to one object being written (the catalog keeps one per file row). The store calls
/// `begin` once an upload id exists, `recordPart` after each part the server confirmed, and `clear` when the
/// object is complete or the upload was aborted. Calls for one upload can overlap (parts finish concurrently):
/// implementations must serialise them.
public protocol MultipartUploadJournal: Sendable {
    func load() async throws -> MultipartUploadState?
    /// Replaces whatever the journal held with a fresh upload.
    func begin(_ state: MultipartUploadState) async throws
    func recordPart(_ part: UploadedPart) async throws
    func clear() async throws
    /// The upload was completed. A journal whose owner records the object afterwards may keep what it knows until
    /// then, so that a crash in between finds the completed upload and keeps it instead of sending it again.
    func finished() async throws
}

extension MultipartUploadJournal {
    public func finished() async throws { try await clear() }
}

/// A multipart upload in progress.
public struct MultipartUploadState: Codable, Sendable, Hashable {
    /// `s3://bucket/full/key`: a journal is never resumed against another object.
    public var location: String
    public var uploadID: String
    public var objectSize: Int64
    public var partSize: Int64
    /// Parts the server confirmed, in no particular order.
    public var parts: [UploadedPart]
    public var startedAt: Date

    public init(location: String, uploadID: String, objectSize: Int64, partSize: Int64, parts: [UploadedPart] = [],
                startedAt: Date = Date()) {
        self.location = location
        self.uploadID = uploadID
        self.objectSize = objectSize
        self.partSize = partSize
        self.parts = parts
        self.startedAt = startedAt
    }
}

/// One stored part: what CompleteMultipartUpload needs, and what a resumed run checks the local bytes against.
public struct UploadedPart: Codable, Sendable, Hashable {
    public var number: Int
    public var etag: String
    /// Base64 SHA-256 of the part, as sent in `x-amz-checksum-sha256`.
    public var checksumSHA256: String
    public var size: Int64

    public init(number: Int, etag: String, checksumSHA256: String, size: Int64) {
        self.number = number
        self.etag = etag
        self.checksumSHA256 = checksumSHA256
        self.size = size
    }
}

/// Keeps the journal in memory: for tests, and for uploads that need not survive the process.
public actor InMemoryMultipartUploadJournal: MultipartUploadJournal {
    public private(set) var state: MultipartUploadState?

    public init(state: MultipartUploadState? = nil) { self.state = state }

    public func load() -> MultipartUploadState? { state }
    public func begin(_ state: MultipartUploadState) { self.state = state }

    public func recordPart(_ part: UploadedPart) {
        state?.parts.removeAll { $0.number == part.number }
        state?.parts.append(part)
    }

    public func clear() { state = nil }
}

/// Keeps the journal in a JSON file, rewritten atomically (temporary file, fsync, rename, fsync directory) after
/// every change so that a crash leaves either the old or the new journal, never a torn one.
public actor JSONFileMultipartUploadJournal: MultipartUploadJournal {
    public nonisolated let path: String
    private var cached: MultipartUploadState?
    private var loaded = false
    /// Writes run one after another, each saving the state as it is when it starts, so that a slow early write can
    /// never land after a later one and bring back an older journal.
    private var lastWrite: Task<Void, any Error>?

    public init(path: String) { self.path = path }

    public func load() async throws -> MultipartUploadState? {
        if loaded { return cached }
        let path = self.path
        let data: Data? = try await blocking {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        if let data {
            do {
                cached = try Self.decoder.decode(MultipartUploadState.self, from: data)
            } catch {
                throw ObjectStoreError(
                    .localIO, operation: "read multipart journal", location: path,
                    message: "the journal is not valid JSON: \(error)")
            }
        }
        loaded = true
        return cached
    }

    public func begin(_ state: MultipartUploadState) async throws {
        cached = state
        loaded = true
        try await persist()
    }

    public func recordPart(_ part: UploadedPart) async throws {
        _ = try await load()
        guard cached != nil else { return }
        cached?.parts.removeAll { $0.number == part.number }
        cached?.parts.append(part)
        try await persist()
    }

    public func clear() async throws {
        cached = nil
        loaded = true
        try await persist()
    }

    /// Saves the current state (or removes the file when there is none) after any write already under way.
    private func persist() async throws {
        let previous = lastWrite
        let write = Task {
            _ = try? await previous?.value
            try await self.writeCurrentState()
        }
        lastWrite = write
        try await write.value
    }

    private func writeCurrentState() async throws {
        let path = self.path
        var data: Data?
        if var state = cached {
            state.parts.sort { $0.number < $1.number }
            data = try Self.encoder.encode(state)
        }
        do {
            try await blocking { [data] in
                if let data {
                    try AtomicFile.write(data, to: path)
                } else {
                    try POSIXFile.removeFile(path)
                    let directory = POSIXFile.parentDirectory(of: path)
                    if try POSIXFile.status(path: directory) != nil { try POSIXFile.syncDirectory(directory) }
                }
            }
        } catch {
            throw ObjectStoreError(.localIO, operation: "write multipart journal", location: path, message: "\(error)")
        }
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// Small whole-file atomic writes. Blocking: call on the thread pool.
enum AtomicFile {
    /// Replaces the file at `path` with `data` by writing a temporary file beside it and renaming it into place.
    /// With `durable`, the file and the rename are fsynced; without, a crash may lose the new content but never
    /// leaves a partial file.
    static func write(_ data: Data, to path: String, durable: Bool = true) throws {
        let directory = POSIXFile.parentDirectory(of: path)
        let temporary = "\(path).tmp-\(UUID().uuidString)"
        // The directory may be pruned by a delete between the mkdir and the create (sidecars of a file store).
        let fd = try POSIXFile.retryingVanishedDirectories {
            try POSIXFile.makeDirectories(directory)
            return try POSIXFile.createExclusive(temporary)
        }
        do {
            defer { POSIXFile.closeFile(fd) }
            try POSIXFile.writeAll(fd: fd, ByteBuffer(bytes: data))
            if durable { try POSIXFile.sync(fd: fd) }
        } catch {
            try? POSIXFile.removeFile(temporary)
            throw error
        }
        do {
            try POSIXFile.renameFile(temporary, path)
        } catch {
            try? POSIXFile.removeFile(temporary)
            throw error
        }
        if durable { try POSIXFile.syncDirectory(directory) }
    }
}
