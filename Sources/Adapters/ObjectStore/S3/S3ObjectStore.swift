import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PipelineCore
import SigV4
import Synchronization

/// An ``ObjectStore`` on the S3 API (AWS, MinIO, R2, B2, GCS interop, moto) through AsyncHTTPClient.
///
/// Every request is signed with SigV4 in headers and retried on throttling, 5xx, timeouts and connection resets.
/// Single PUTs and every part carry `x-amz-checksum-sha256`, so S3 rejects bytes damaged on the way; the signed
/// payload hash is the same digest, computed once.
public struct S3ObjectStore: ObjectStore {
    public let bucket: String
    /// Prepended to every key; empty or ending in `/`.
    public let prefix: String
    let client: S3Client

    public var location: StorageURL { .s3(bucket: bucket, prefix: prefix) }

    public init(
        bucket: String, prefix: String = "", configuration: S3Configuration, credentials: any CredentialProvider,
        httpClient: HTTPClient = ObjectStoreHTTPClient.shared, logger: Logger = Logger(label: "ObjectStore.S3"),
        throttle: TransferThrottle? = nil
    ) throws {
        try self.init(bucket: bucket, prefix: prefix, configuration: configuration, credentials: credentials,
                      transport: AsyncHTTPClientTransport(client: httpClient), logger: logger, throttle: throttle)
    }

    init(bucket: String, prefix: String, configuration: S3Configuration, credentials: any CredentialProvider,
         transport: any HTTPTransport, logger: Logger, throttle: TransferThrottle? = nil) throws {
        self.bucket = bucket
        self.prefix = prefix
        self.client = S3Client(
            bucket: bucket, endpoint: try S3Endpoint(bucket: bucket, configuration: configuration),
            configuration: configuration, credentials: credentials, transport: transport, logger: logger, throttle: throttle)
    }

    /// The S3 key of a store key; rejects keys S3 cannot hold.
    func fullKey(_ key: String, operation: String) throws -> String {
        let full = prefix + key
        guard !key.isEmpty, full.utf8.count <= 1024 else {
            throw ObjectStoreError(.invalidKey, operation: operation, location: client.location(full),
                                   message: key.isEmpty ? "the key is empty" : "the key is longer than 1024 bytes")
        }
        return full
    }

    // MARK: put

    public func put(_ key: String, from source: ObjectSource, options: PutOptions,
                    journal: (any MultipartUploadJournal)?) async throws -> PutResult {
        let full = try fullKey(key, operation: "PUT")
        let headers = try Self.writeHeaders(options, location: client.location(full))
        let reader = try await SourceReader.open(source)
        defer { reader.close() }
        if reader.length <= Int64(options.multipartThreshold) || reader.length == 0 {
            // A journal left by an earlier multipart attempt of this object is obsolete now.
            if let journal, let stale = try await journal.load() {
                try? await abortJournaled(stale)
                try await journal.clear()
            }
            return try await singlePut(key: key, fullKey: full, reader: reader, headers: headers)
        }
        let upload = MultipartUploader(store: self, key: key, fullKey: full, reader: reader, options: options,
                                       headers: headers, journal: journal)
        return try await upload.run()
    }

    private func singlePut(key: String, fullKey: String, reader: SourceReader,
                           headers: [(name: String, value: String)]) async throws -> PutResult {
        let body = try await reader.read(Int(reader.length))
        try await reader.verifyEnd()
        let digest = SHA256.hash(buffer: body)
        var request = S3Client.Request(method: .PUT, key: fullKey, headers: headers, body: body, bodySHA256: digest,
                                       operation: "PUT")
        request.startsTransfer = true
        let checksum = Data(digest).base64EncodedString()
        request.headers.append(("x-amz-checksum-sha256", checksum))
        // As the AWS SDKs send it: servers that only keep (and report back) a checksum named by its algorithm — moto —
        // then keep this one, so a later check of the stored object can use it.
        request.headers.append(("x-amz-sdk-checksum-algorithm", "SHA256"))
        let response = try await client.performCollecting(request)
        // Confirmed by what the server computed from the bytes it received: S3 checks the body against
        // x-amz-checksum-sha256 (BadDigest otherwise) and echoes it; servers that do not (moto) answer the body's MD5
        // as the ETag of a single PUT. A 200 with neither (a proxy, a cut answer) is confirmed by a HEAD instead, so
        // nothing is recorded on the strength of an answer that may not come from the store.
        let echoed = response.headers.first(name: "x-amz-checksum-sha256")
        if echoed != checksum {
            let md5 = Array(Insecure.MD5.hash(buffer: body)).hexString
            let etag = response.headers.first(name: "ETag").map { unquoted($0).lowercased() }
            if echoed != nil || etag != md5 {
                let stored = echoed == nil ? try await head(key) : nil
                guard echoed == nil, let stored, stored.size == reader.length,
                      stored.checksumSHA256 == checksum || stored.etag.map({ unquoted($0).lowercased() }) == md5 else {
                    throw ObjectStoreError(.protocolViolation, operation: "PUT", location: client.location(fullKey),
                                           message: "the object stored is not confirmed: the server reports another checksum or size than the one sent")
                }
            }
        }
        return PutResult(key: key, size: reader.length, sha256: Array(digest).hexString,
                         etag: response.headers.first(name: "ETag"), partCount: 0, partsUploaded: 0)
    }

    static func writeHeaders(_ options: PutOptions, location: String) throws -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let storageClass = options.storageClass { headers.append(("x-amz-storage-class", storageClass.rawValue)) }
        if let contentType = options.contentType { headers.append(("Content-Type", contentType)) }
        for (name, value) in options.metadata.sorted(by: { $0.key < $1.key }) {
            let isToken = !name.isEmpty && name.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }
            let isPrintable = value.utf8.allSatisfy { $0 >= 32 && $0 < 127 }
            guard isToken, isPrintable else {
                throw ObjectStoreError(
                    .invalidArgument, operation: "PUT", location: location,
                    message: "metadata names must be header tokens and values printable ASCII (metadata '\(name)')")
            }
            headers.append(("x-amz-meta-\(name.lowercased())", value))
        }
        return headers
    }

    // MARK: get / head

    public func get(_ key: String, range: ByteRange?) async throws -> ObjectDownload {
        let full = try fullKey(key, operation: "GET")
        let response = try await openGet(fullKey: full, range: range, ifMatch: nil, startsTransfer: true)
        var info = Self.objectInfo(key: key, headers: response.headers)
        var contentLength = Int64(response.headers.first(name: "Content-Length") ?? "") ?? info.size
        if let total = Self.totalSize(contentRange: response.headers.first(name: "Content-Range")) {
            info.size = total
        } else if range != nil, response.status == .ok {
            // The server ignored the range and sends the whole object.
            contentLength = info.size
        }
        let first = response.status == .partialContent ? (range?.first ?? 0) : 0
        let iterator = ResumingBodyIterator(
            store: self, fullKey: full, etag: info.etag, start: first, length: contentLength, response: response)
        let box = IteratorBox(iterator)
        return ObjectDownload(info: info, contentLength: contentLength, body: ObjectByteStream { box.take() })
    }

    func openGet(fullKey: String, range: ByteRange?, ifMatch: String?, startsTransfer: Bool = false) async throws -> HTTPClientResponse {
        var request = S3Client.Request(method: .GET, key: fullKey, operation: "GET")
        request.startsTransfer = startsTransfer
        if let range { request.headers.append(("Range", range.description)) }
        if let ifMatch { request.headers.append(("If-Match", ifMatch)) }
        return try await client.perform(request) { $0 }
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        let full = try fullKey(key, operation: "HEAD")
        var request = S3Client.Request(method: .HEAD, key: full, operation: "HEAD")
        request.headers.append(("x-amz-checksum-mode", "ENABLED"))
        do {
            let headers = try await client.perform(request) { $0.headers }
            return Self.objectInfo(key: key, headers: headers)
        } catch let error as ObjectStoreError where error.kind == .notFound {
            return nil
        }
    }

    static func objectInfo(key: String, headers: HTTPHeaders) -> ObjectInfo {
        var metadata: [String: String] = [:]
        for header in headers where header.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(header.name.lowercased().dropFirst("x-amz-meta-".count))] = header.value
        }
        let storageClassName = headers.first(name: "x-amz-storage-class") ?? "STANDARD"
        return ObjectInfo(
            key: key, size: Int64(headers.first(name: "Content-Length") ?? "") ?? 0,
            etag: headers.first(name: "ETag"),
            lastModified: headers.first(name: "Last-Modified").flatMap(S3Dates.parseHTTPDate),
            storageClassName: storageClassName,
            restore: restoreState(storageClassName: storageClassName, header: headers.first(name: "x-amz-restore")),
            contentType: headers.first(name: "Content-Type"), metadata: metadata,
            checksumSHA256: headers.first(name: "x-amz-checksum-sha256"))
    }

    /// Reads `x-amz-restore`: `ongoing-request="true"`, or `ongoing-request="false", expiry-date="<HTTP date>"`.
    static func restoreState(storageClassName: String, header: String?) -> RestoreState {
        let archived = StorageClass(rawValue: storageClassName)?.needsRestoreBeforeRead ?? false
        guard let header else { return archived ? .archived : .notArchived }
        if header.contains("ongoing-request=\"true\"") { return .inProgress }
        var expiry: Date?
        if let start = header.range(of: "expiry-date=\"") {
            let rest = header[start.upperBound...]
            if let end = rest.firstIndex(of: "\"") { expiry = S3Dates.parseHTTPDate(String(rest[..<end])) }
        }
        return .restored(until: expiry)
    }

    static func totalSize(contentRange: String?) -> Int64? {
        guard let contentRange, let slash = contentRange.lastIndex(of: "/") else { return nil }
        return Int64(contentRange[contentRange.index(after: slash)...])
    }

    // MARK: list / delete

    public func list(prefix listPrefix: String, continuationToken: String?, maxKeys: Int) async throws
        -> ObjectListPage
    {
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("prefix", prefix + listPrefix), ("max-keys", String(max(1, min(maxKeys, 1000)))),
        ]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let request = S3Client.Request(method: .GET, key: nil, query: query, operation: "ListObjectsV2")
        let response = try await client.performCollecting(request)
        guard let root = XMLElementNode.parse(response.data), root.name == "ListBucketResult" else {
            throw ObjectStoreError(.protocolViolation, operation: "ListObjectsV2", location: client.location(prefix),
                                   message: "the answer is not a ListBucketResult document")
        }
        let objects = root.children("Contents").compactMap { entry -> ObjectSummary? in
            guard let key = entry.value("Key"), key.hasPrefix(prefix) else { return nil }
            return ObjectSummary(
                key: String(key.dropFirst(prefix.count)), size: Int64(entry.value("Size") ?? "") ?? 0,
                etag: entry.value("ETag"), lastModified: entry.value("LastModified").flatMap(S3Dates.parseISO8601),
                storageClassName: entry.value("StorageClass") ?? "STANDARD")
        }
        let truncated = root.value("IsTruncated") == "true"
        return ObjectListPage(objects: objects, nextContinuationToken: truncated ? root.value("NextContinuationToken")
            : nil)
    }

    public func delete(_ key: String) async throws {
        let full = try fullKey(key, operation: "DELETE")
        _ = try await client.performCollecting(S3Client.Request(method: .DELETE, key: full, operation: "DELETE"))
    }

    /// Creates the bucket (for setups and tests; production buckets are made with their lifecycle rules by IaC).
    /// Succeeds when this account already owns it.
    public func createBucket() async throws {
        var request = S3Client.Request(method: .PUT, key: nil, operation: "CreateBucket")
        if client.configuration.region != "us-east-1" {
            request.body = ByteBuffer(string: """
                <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
                <LocationConstraint>\(client.configuration.region)</LocationConstraint></CreateBucketConfiguration>
                """)
        }
        do {
            _ = try await client.performCollecting(request)
        } catch let error as ObjectStoreError where error.serverCode == "BucketAlreadyOwnedByYou" {
            return
        }
    }

    // MARK: restore / presign

    public func requestRestore(_ key: String, days: Int, tier: RestoreTier) async throws -> RestoreRequestOutcome {
        let full = try fullKey(key, operation: "RestoreObject")
        let xml = """
            <RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Days>\(days)</Days>\
            <GlacierJobParameters><Tier>\(tier.rawValue)</Tier></GlacierJobParameters></RestoreRequest>
            """
        let request = S3Client.Request(method: .POST, key: full, query: [("restore", "")],
                                       headers: [("Content-Type", "application/xml")], body: ByteBuffer(string: xml),
                                       operation: "RestoreObject")
        do {
            let response = try await client.performCollecting(request)
            return response.status == .accepted ? .started : .alreadyRestored
        } catch let error as ObjectStoreError where error.serverCode == "RestoreAlreadyInProgress" {
            return .alreadyInProgress
        }
    }

    public func presignedGet(_ key: String, expiresIn: Duration) async throws -> PresignedURL {
        let full = try fullKey(key, operation: "presign GET")
        let seconds = Int(expiresIn.components.seconds)
        return try await client.presigned(key: full, expiresIn: seconds)
    }

    // MARK: multipart bookkeeping

    public func listMultipartUploads(prefix listPrefix: String) async throws -> [MultipartUploadInfo] {
        var uploads: [MultipartUploadInfo] = []
        var keyMarker: String?
        var uploadMarker: String?
        repeat {
            var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", prefix + listPrefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let uploadMarker { query.append(("upload-id-marker", uploadMarker)) }
            let response = try await client.performCollecting(
                S3Client.Request(method: .GET, key: nil, query: query, operation: "ListMultipartUploads"))
            guard let root = XMLElementNode.parse(response.data) else {
                throw ObjectStoreError(.protocolViolation, operation: "ListMultipartUploads",
                                       location: client.location(prefix), message: "the answer is not XML")
            }
            for upload in root.children("Upload") {
                guard let key = upload.value("Key"), key.hasPrefix(prefix), let id = upload.value("UploadId") else {
                    continue
                }
                uploads.append(MultipartUploadInfo(
                    key: String(key.dropFirst(prefix.count)), uploadID: id,
                    initiated: upload.value("Initiated").flatMap(S3Dates.parseISO8601)))
            }
            let truncated = root.value("IsTruncated") == "true"
            keyMarker = truncated ? root.value("NextKeyMarker") : nil
            uploadMarker = truncated ? root.value("NextUploadIdMarker") : nil
        } while keyMarker != nil
        return uploads
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        try await abort(fullKey: try fullKey(key, operation: "AbortMultipartUpload"), uploadID: uploadID)
    }

    func abort(fullKey: String, uploadID: String) async throws {
        let request = S3Client.Request(method: .DELETE, key: fullKey, query: [("uploadId", uploadID)],
                                       operation: "AbortMultipartUpload")
        do {
            _ = try await client.performCollecting(request)
        } catch let error as ObjectStoreError where error.kind == .noSuchUpload || error.kind == .notFound {
            // Already gone: what abort wanted.
        }
    }

    /// Aborts the upload a journal describes, if it belongs to this bucket.
    func abortJournaled(_ state: MultipartUploadState) async throws {
        let bucketPrefix = "s3://\(bucket)/"
        guard state.location.hasPrefix(bucketPrefix) else { return }
        try await abort(fullKey: String(state.location.dropFirst(bucketPrefix.count)), uploadID: state.uploadID)
    }
}

/// Hands the single iterator of a GET body to whoever iterates the stream first.
final class IteratorBox: Sendable {
    // A download is iterated once, but the stream value may be copied across tasks.
    private let iterator: Mutex<(any ChunkIterator)?>

    init(_ iterator: sending any ChunkIterator) { self.iterator = Mutex(iterator) }

    func take() -> sending any ChunkIterator {
        iterator.withLock { $0.take() } ?? EmptyChunkIterator()
    }
}

final class EmptyChunkIterator: ChunkIterator {
    func next() async throws -> ByteBuffer? { nil }
}

/// Streams a GET body; when the connection breaks mid-way it asks again for the rest (`Range` from the first
/// missing byte, `If-Match` the same ETag so a replaced object is never stitched onto the old one).
final class ResumingBodyIterator: ChunkIterator {
    private let store: S3ObjectStore
    private let fullKey: String
    private let etag: String?
    private let start: Int64
    private let length: Int64
    private var delivered: Int64 = 0
    private var resumes = 0
    private var current: HTTPClientResponse.Body.AsyncIterator

    init(store: S3ObjectStore, fullKey: String, etag: String?, start: Int64, length: Int64,
         response: HTTPClientResponse) {
        self.store = store
        self.fullKey = fullKey
        self.etag = etag
        self.start = start
        self.length = length
        self.current = response.body.makeAsyncIterator()
    }

    func next() async throws -> ByteBuffer? {
        while true {
            do {
                if let chunk = try await current.next() {
                    delivered += Int64(chunk.readableBytes)
                    // Held back until the bucket grants it: the server then meets TCP back-pressure.
                    if let bucket = store.client.throttle?.download { try await bucket.take(chunk.readableBytes) }
                    return chunk
                }
                if delivered >= length { return nil }
                throw ObjectStoreError(.transient, operation: "GET", location: store.client.location(fullKey),
                                       message: "the connection ended after \(delivered) of \(length) bytes")
            } catch {
                let failure = error as? ObjectStoreError
                if Task.isCancelled || error is CancellationError || failure?.kind == .cancelled {
                    throw ObjectStoreError(.cancelled, operation: "GET", location: store.client.location(fullKey),
                                           message: "cancelled")
                }
                resumes += 1
                guard resumes < store.client.configuration.retry.maxAttempts, etag != nil else {
                    throw failure ?? ObjectStoreError(.transient, operation: "GET",
                                                      location: store.client.location(fullKey), message: "\(error)")
                }
                let range = ByteRange(first: start + delivered, last: start + length - 1)
                let response = try await store.openGet(fullKey: fullKey, range: range, ifMatch: etag)
                current = response.body.makeAsyncIterator()
            }
        }
    }
}
