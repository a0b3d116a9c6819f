import Foundation
import PipelineCore
import NIOCore

/// A bucket (or a directory that behaves like one) that the uploader and the workers move every byte through.
///
/// Keys are relative to the store's location: a store opened from `s3://bucket/staging/` maps the key `a/b` to
/// the S3 key `staging/a/b`, and lists return keys without that prefix. Every operation either completes or
/// throws an ``ObjectStoreError``; no operation reports success for an object that is not fully written.
public protocol ObjectStore: Sendable {
    /// Where this store keeps its objects (for logs and the catalog's `storage` column).
    var location: StorageURL { get }

    /// Writes an object from a source of known length and returns the SHA-256 of exactly the bytes stored.
    ///
    /// Small objects go in one request; larger ones as a multipart upload with bounded memory. When a `journal`
    /// is given, a multipart upload that was interrupted resumes: parts already stored are verified and skipped.
    func put(_ key: String, from source: ObjectSource, options: PutOptions, journal: (any MultipartUploadJournal)?)
        async throws -> PutResult

    /// Streams an object, or the inclusive byte range of it. The body must be consumed (or dropped) promptly:
    /// for S3 it holds an HTTP connection.
    func get(_ key: String, range: ByteRange?) async throws -> ObjectDownload

    /// The object's size, class, restore state and metadata, or nil when there is no such key.
    func head(_ key: String) async throws -> ObjectInfo?

    /// One page of the keys that start with `prefix`, in UTF-8 byte order.
    func list(prefix: String, continuationToken: String?, maxKeys: Int) async throws -> ObjectListPage

    /// Removes an object. Removing a key that does not exist succeeds, as in S3.
    func delete(_ key: String) async throws

    /// Makes the names of objects written with ``PutOptions/deferNameSync`` durable: the file store syncs each of
    /// their directories once; S3 has nothing to do.
    func syncNames(of keys: [String]) async throws

    /// Removes many objects; returns the errors of those that could not be removed (the others are gone).
    /// The file store syncs each directory once for the whole call instead of once per object.
    func delete(keys: [String]) async -> [String: any Error]

    /// Copies inside this store (CopyObject up to 5 GB, UploadPartCopy above), optionally to another class.
    func copy(from sourceKey: String, to destinationKey: String, options: CopyOptions) async throws -> ObjectInfo

    /// Asks for a temporary readable copy of an archived object. See ``ObjectInfo/restore`` for its progress.
    func requestRestore(_ key: String, days: Int, tier: RestoreTier) async throws -> RestoreRequestOutcome

    /// A URL that lets anyone holding it GET the object until it expires: after `expiresIn` (at most 7 days for
    /// S3) or when the credentials that signed it do, whichever comes first.
    func presignedGet(_ key: String, expiresIn: Duration) async throws -> PresignedURL

    /// Multipart uploads that were started under `prefix` and neither completed nor aborted.
    func listMultipartUploads(prefix: String) async throws -> [MultipartUploadInfo]

    /// Abandons a multipart upload and frees its stored parts. Aborting an unknown upload succeeds.
    func abortMultipartUpload(_ key: String, uploadID: String) async throws
}

extension ObjectStore {
    public func put(_ key: String, from source: ObjectSource, options: PutOptions = PutOptions()) async throws -> PutResult {
        try await put(key, from: source, options: options, journal: nil)
    }

    /// Writes a small in-memory object (a manifest, a catalog sidecar).
    public func put(_ key: String, bytes: some Sequence<UInt8>, options: PutOptions = PutOptions()) async throws -> PutResult {
        try await put(key, from: .bytes(Array(bytes)), options: options, journal: nil)
    }

    public func get(_ key: String) async throws -> ObjectDownload {
        try await get(key, range: nil)
    }

    /// Reads a whole object into memory; refuses objects larger than `limit` bytes.
    public func getBytes(_ key: String, range: ByteRange? = nil, limit: Int = 64 << 20) async throws -> [UInt8] {
        let download = try await get(key, range: range)
        var bytes: [UInt8] = []
        for try await chunk in download.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw ObjectStoreError(
                    .invalidArgument, operation: "GET", location: describe(key),
                    message: "the object is larger than the \(limit)-byte limit for reading it into memory")
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    public func list(prefix: String = "", continuationToken: String? = nil) async throws -> ObjectListPage {
        try await list(prefix: prefix, continuationToken: continuationToken, maxKeys: 1000)
    }

    /// Every key under `prefix`, fetched page by page as the sequence is iterated.
    public func listAll(prefix: String = "") -> ObjectListing {
        ObjectListing(store: self, prefix: prefix)
    }

    /// Nothing to do where objects are durable once written.
    public func syncNames(of keys: [String]) async throws {}

    /// One request per key, 32 at a time (a round trip each).
    public func delete(keys: [String]) async -> [String: any Error] {
        await withTaskGroup(of: (String, (any Error)?).self) { group in
            var failures: [String: any Error] = [:]
            var next = keys.makeIterator()
            func addNext() -> Bool {
                guard let key = next.next() else { return false }
                group.addTask {
                    do {
                        try await delete(key)
                        return (key, nil)
                    } catch {
                        return (key, error)
                    }
                }
                return true
            }
            for _ in 0..<32 where !addNext() { break }
            while let (key, error) = await group.next() {
                if let error { failures[key] = error }
                _ = addNext()
            }
            return failures
        }
    }

    public func copy(from sourceKey: String, to destinationKey: String) async throws -> ObjectInfo {
        try await copy(from: sourceKey, to: destinationKey, options: CopyOptions())
    }

    /// Aborts unfinished multipart uploads started before `date` (uploads whose owner crashed for good).
    @discardableResult
    public func abortMultipartUploads(prefix: String = "", initiatedBefore date: Date) async throws -> Int {
        var aborted = 0
        for upload in try await listMultipartUploads(prefix: prefix) {
            guard let initiated = upload.initiated, initiated < date else { continue }
            try await abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            aborted += 1
        }
        return aborted
    }

    func describe(_ key: String) -> String {
        location.describing(key: key)
    }
}

/// Options for writing an object.
public struct PutOptions: Sendable, Hashable {
    /// `x-amz-storage-class`; nil leaves the bucket's default (STANDARD).
    public var storageClass: StorageClass?
    public var contentType: String?
    /// User metadata (`x-amz-meta-*`); names are sent in lower case.
    public var metadata: [String: String]
    /// Objects up to this size are sent in one request (held in memory while being sent).
    public var multipartThreshold: Int
    /// The preferred part size; raised automatically so that an object never needs more than 10,000 parts.
    public var partSize: Int
    /// Parts sent at the same time. Memory use is about (maxPartsInFlight + 1) × part size.
    public var maxPartsInFlight: Int
    /// What the part buffers of all multipart uploads of the process may hold together.
    public var partBuffers: PartBufferBudget = .shared
    /// The file store makes the object's bytes durable but leaves its name (the directory entry) to a later
    /// ``ObjectStore/syncNames(of:)``, so that many small objects share one directory sync. Until then a crash
    /// may lose the object, never leave a partial one. S3 ignores it: its objects are durable when written.
    public var deferNameSync: Bool
    /// A resumed multipart upload whose stored part no longer matches the local bytes fails with `sourceChanged`
    /// instead of sending that part again. For encrypted streams: their key is derived per object, so a second,
    /// different ciphertext under the same key must never leave the machine; the caller starts a new object.
    public var resumedPartsMustMatch = false

    public init(
        storageClass: StorageClass? = nil, contentType: String? = nil, metadata: [String: String] = [:],
        multipartThreshold: Int = 16 << 20, partSize: Int = 16 << 20, maxPartsInFlight: Int = 4, deferNameSync: Bool = false
    ) {
        self.deferNameSync = deferNameSync
        self.storageClass = storageClass
        self.contentType = contentType
        self.metadata = metadata
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.maxPartsInFlight = maxPartsInFlight
    }
}

/// What a successful write stored.
public struct PutResult: Sendable, Hashable {
    public var key: String
    public var size: Int64
    /// Lower-case hex SHA-256 of the object's bytes, computed while they were read.
    public var sha256: String
    public var etag: String?
    /// Parts of the multipart upload (0 for a single request).
    public var partCount: Int
    /// Parts sent in this call; `partCount - partsUploaded` were verified and reused from an earlier attempt.
    public var partsUploaded: Int
    /// Bytes sent in this call (the whole size for a single put; only the parts sent for a resumed upload).
    public var bytesUploaded: Int64

    public init(key: String, size: Int64, sha256: String, etag: String?, partCount: Int, partsUploaded: Int, bytesUploaded: Int64? = nil) {
        self.key = key
        self.size = size
        self.sha256 = sha256
        self.etag = etag
        self.partCount = partCount
        self.partsUploaded = partsUploaded
        self.bytesUploaded = bytesUploaded ?? size
    }
}

/// An inclusive byte range, as in HTTP's `Range: bytes=first-last`.
public struct ByteRange: Sendable, Hashable, CustomStringConvertible {
    public var first: Int64
    /// The last byte to read, inclusive; nil reads to the end.
    public var last: Int64?

    public init(first: Int64, last: Int64? = nil) {
        precondition(first >= 0 && (last ?? first) >= first, "invalid byte range")
        self.first = first
        self.last = last
    }

    public init(_ range: ClosedRange<Int64>) { self.init(first: range.lowerBound, last: range.upperBound) }

    public var description: String { "bytes=\(first)-\(last.map(String.init) ?? "")" }
}

/// Where an archived object's restore stands, from `x-amz-restore`.
public enum RestoreState: Sendable, Hashable {
    /// The object's class can be read directly.
    case notArchived
    /// Archived and no restore was requested (or the restored copy expired).
    case archived
    case inProgress
    /// A readable copy exists until the date (nil when the server did not say).
    case restored(until: Date?)

    public var isReadable: Bool {
        switch self {
        case .notArchived, .restored: true
        case .archived, .inProgress: false
        }
    }
}

public enum RestoreTier: String, Sendable, Hashable {
    case expedited = "Expedited"
    case standard = "Standard"
    case bulk = "Bulk"
}

/// How long a restore of `storageClass` takes at most with `tier` (AWS's published upper bounds).
public func expectedRestoreTime(storageClass: String?, tier: RestoreTier) -> Duration {
    let hours: Double
    switch (storageClass ?? "DEEP_ARCHIVE", tier) {
    case ("GLACIER", .expedited): hours = 5.0 / 60
    case ("GLACIER", .standard): hours = 5
    case ("GLACIER", .bulk): hours = 12
    case (_, .bulk): hours = 48
    default: hours = 12
    }
    return .seconds(Int64(hours * 3600))
}

public enum RestoreRequestOutcome: Sendable, Hashable {
    /// A new restore was started.
    case started
    case alreadyInProgress
    /// The object was already restored (its expiry was updated) or never needed a restore.
    case alreadyRestored
}

/// An object's metadata.
public struct ObjectInfo: Sendable, Hashable {
    public var key: String
    public var size: Int64
    public var etag: String?
    public var lastModified: Date?
    /// The storage class as the server named it (`STANDARD` when it said nothing, as S3 does for STANDARD).
    public var storageClassName: String
    public var restore: RestoreState
    public var contentType: String?
    /// User metadata, names in lower case.
    public var metadata: [String: String]
    /// The server's `x-amz-checksum-sha256` (base64; `…-N` for a multipart object), when it reported one.
    public var checksumSHA256: String?

    public init(
        key: String, size: Int64, etag: String? = nil, lastModified: Date? = nil, storageClassName: String = "STANDARD",
        restore: RestoreState = .notArchived, contentType: String? = nil, metadata: [String: String] = [:],
        checksumSHA256: String? = nil
    ) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.storageClassName = storageClassName
        self.restore = restore
        self.contentType = contentType
        self.metadata = metadata
        self.checksumSHA256 = checksumSHA256
    }

    public var storageClass: StorageClass? { StorageClass(rawValue: storageClassName) }
}

/// The result of a GET: metadata and the streamed bytes.
public struct ObjectDownload: Sendable {
    /// The whole object's metadata; `info.size` is the whole object's size even for a range.
    public var info: ObjectInfo
    /// The bytes returned: the range, or the whole object.
    public var contentLength: Int64
    public var body: ObjectByteStream

    public init(info: ObjectInfo, contentLength: Int64, body: ObjectByteStream) {
        self.info = info
        self.contentLength = contentLength
        self.body = body
    }
}

public struct ObjectSummary: Sendable, Hashable {
    public var key: String
    public var size: Int64
    public var etag: String?
    public var lastModified: Date?
    public var storageClassName: String

    public init(key: String, size: Int64, etag: String?, lastModified: Date?, storageClassName: String) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.storageClassName = storageClassName
    }
}

public struct ObjectListPage: Sendable, Hashable {
    public var objects: [ObjectSummary]
    /// Pass to the next `list` call; nil on the last page.
    public var nextContinuationToken: String?

    public init(objects: [ObjectSummary], nextContinuationToken: String?) {
        self.objects = objects
        self.nextContinuationToken = nextContinuationToken
    }
}

public struct CopyOptions: Sendable, Hashable {
    /// The copy's class; nil keeps STANDARD (S3 does not carry the source's class over).
    public var storageClass: StorageClass?
    /// Copies of at most this size use one CopyObject (S3's limit is 5 GB); larger ones UploadPartCopy.
    public var singleCopyLimit: Int64
    /// Part size for UploadPartCopy.
    public var partSize: Int64

    public init(storageClass: StorageClass? = nil, singleCopyLimit: Int64 = 5_000_000_000, partSize: Int64 = 512 << 20) {
        self.storageClass = storageClass
        self.singleCopyLimit = singleCopyLimit
        self.partSize = partSize
    }
}

public struct MultipartUploadInfo: Sendable, Hashable {
    public var key: String
    public var uploadID: String
    public var initiated: Date?

    public init(key: String, uploadID: String, initiated: Date?) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }
}

/// Every object under a prefix, one page fetched at a time.
public struct ObjectListing: AsyncSequence, Sendable {
    public typealias Element = ObjectSummary
    let store: any ObjectStore
    let prefix: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        let store: any ObjectStore
        let prefix: String
        var page: [ObjectSummary] = []
        var index = 0
        var token: String?
        var finished = false

        public mutating func next() async throws -> ObjectSummary? {
            while index == page.count {
                if finished { return nil }
                let result = try await store.list(prefix: prefix, continuationToken: token, maxKeys: 1000)
                page = result.objects
                index = 0
                token = result.nextContinuationToken
                finished = token == nil
            }
            defer { index += 1 }
            return page[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(store: store, prefix: prefix) }
}

extension ObjectStore {
    /// The URL alone, for callers that do not keep it.
    public func presignedGetURL(_ key: String, expiresIn: Duration) async throws -> String {
        try await presignedGet(key, expiresIn: expiresIn).url
    }
}
