import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PipelineCore
import SystemIO

/// One multipart upload: create (or resume), send the parts with a bounded window, complete.
///
/// The source is read front to back by this task, which also feeds the whole-object SHA-256; each part is hashed
/// and sent by a child task. At most `maxPartsInFlight` parts are being sent while the next one is read, so memory
/// stays near (maxPartsInFlight + 1) × part size whatever the object size; every buffer is counted in the
/// process-wide `PartBufferBudget`, so several uploads at once stay within it too.
struct MultipartUploader {
    let store: S3ObjectStore
    let key: String
    let fullKey: String
    let reader: SourceReader
    let options: PutOptions
    let headers: [(name: String, value: String)]
    let journal: (any MultipartUploadJournal)?

    private var client: S3Client { store.client }
    private var location: String { client.location(fullKey) }

    /// A part the server holds from an earlier attempt, reused only if the local bytes still match it.
    struct StoredPart: Sendable {
        var etag: String
        var size: Int64
        /// From the journal or ListParts; nil when neither knows it (then the ETag, an MD5, is compared).
        var checksumSHA256: String?
        var journaled: Bool
    }

    func run() async throws -> PutResult {
        let size = reader.length
        var partSize = try PartSizing.partSize(objectSize: size, preferred: options.partSize)
        var uploadID: String?
        var stored: [Int: StoredPart] = [:]

        if let journal, let saved = try await journal.load() {
            let sameObject = saved.location == location && saved.objectSize == size
                && saved.partSize >= PartSizing.minimumPartSize
                && PartSizing.partCount(objectSize: size, partSize: saved.partSize) <= PartSizing.maximumPartCount
            if sameObject {
                do {
                    stored = try await reconcile(saved: saved, listed: listParts(uploadID: saved.uploadID))
                    uploadID = saved.uploadID
                    partSize = saved.partSize
                    client.logger.info("resuming multipart upload", metadata: [
                        "s3.location": "\(location)", "s3.parts_stored": "\(stored.count)",
                    ])
                } catch let error as ObjectStoreError where error.kind == .noSuchUpload || error.kind == .notFound {
                    // Completed just before a crash, before the caller could record it? Then nothing is sent again.
                    let adopted: PutResult?
                    do {
                        adopted = try await adoptCompleted(saved)
                    } catch let error as ObjectStoreError where error.kind == .sourceChanged {
                        try? await journal.clear()
                        throw error
                    }
                    if let adopted {
                        try await journal.finished()
                        return adopted
                    }
                    try await journal.clear()
                }
            } else {
                // The journal describes other bytes (another size, another key): that upload can never finish.
                try? await store.abortJournaled(saved)
                try await journal.clear()
            }
        }

        let id: String
        if let uploadID {
            id = uploadID
        } else {
            id = try await create()
            do {
                try await journal?.begin(MultipartUploadState(
                    location: location, uploadID: id, objectSize: size, partSize: partSize))
            } catch {
                // Nobody could resume an upload whose id was not recorded.
                await abortDetached(uploadID: id)
                throw error
            }
        }

        do {
            let (parts, sha256, uploadedCount, uploadedBytes) = try await sendParts(uploadID: id, partSize: partSize, stored: stored)
            let etag = try await complete(uploadID: id, parts: parts)
            try? await journal?.finished()
            return PutResult(key: key, size: size, sha256: sha256, etag: etag, partCount: parts.count,
                             partsUploaded: uploadedCount, bytesUploaded: uploadedBytes)
        } catch {
            let failure = error as? ObjectStoreError
            // A cancelled upload (shutdown, a lost lease) is resumed later whatever error the cancellation caused.
            let resumable = journal != nil && (Task.isCancelled || (failure.map(Self.isResumable) ?? true))
            if !resumable {
                await abortDetached(uploadID: id)
                try? await journal?.clear()
            }
            if let failure { throw failure }
            throw ObjectStoreError(.cancelled, operation: "multipart upload", location: location, message: "\(error)")
        }
    }

    /// The journal's upload is gone from the server. If every part was journaled and the object at the key has the
    /// size and the composite checksum (or multipart ETag) those parts make, the upload was completed: the local
    /// bytes are then read once and checked part by part, and the object is kept as it is. Nil when the object is
    /// not that upload (start over); `sourceChanged` when it is but the local bytes differ now.
    private func adoptCompleted(_ saved: MultipartUploadState) async throws -> PutResult? {
        let count = PartSizing.partCount(objectSize: saved.objectSize, partSize: saved.partSize)
        let parts = Dictionary(saved.parts.map { ($0.number, $0) }, uniquingKeysWith: { _, last in last })
        guard count > 0, (1...count).allSatisfy({ parts[$0] != nil }) else { return nil }
        let ordered = (1...count).map { parts[$0]! }
        let head: ObjectInfo?
        do {
            head = try await store.head(key)
        } catch let error as ObjectStoreError where error.kind == .accessDenied {
            // A write-only key (the deployed uploader's, infra/iam.tf) may not look: the file is sent again.
            return nil
        }
        guard let object = head, object.size == saved.objectSize, Self.isObject(object, madeOf: ordered) else { return nil }

        var wholeObject = SHA256()
        for number in 1...count {
            let part = parts[number]!
            let body = try await reader.read(Int(min(saved.partSize, reader.remaining)), reusing: BufferHandoff(nil))
            wholeObject.update(buffer: body)
            guard Int64(body.readableBytes) == part.size, part.checksumSHA256 == Data(SHA256.hash(buffer: body)).base64EncodedString() else {
                throw ObjectStoreError(.sourceChanged, operation: "multipart upload", location: location,
                                       message: "part \(number) of the completed upload no longer matches the local bytes; run again to upload anew")
            }
        }
        try await reader.verifyEnd()
        client.logger.info("multipart upload was already completed; kept", metadata: ["s3.location": "\(location)", "s3.parts": "\(count)"])
        return PutResult(key: key, size: saved.objectSize, sha256: Array(wholeObject.finalize()).hexString, etag: object.etag, partCount: count,
                         partsUploaded: 0, bytesUploaded: 0)
    }

    /// Whether keeping the upload for a later run makes sense. Changed or invalid input cannot get better.
    static func isResumable(_ error: ObjectStoreError) -> Bool {
        ![.sourceChanged, .invalidArgument, .noSuchUpload, .noSuchBucket, .invalidKey].contains(error.kind)
    }

    /// Aborts even when this task was cancelled: the abort runs in its own task.
    private func abortDetached(uploadID: String) async {
        let store = self.store
        let fullKey = self.fullKey
        await Task { try? await store.abort(fullKey: fullKey, uploadID: uploadID) }.value
    }

    // MARK: Parts

    private func sendParts(uploadID: String, partSize: Int64, stored: [Int: StoredPart]) async throws
        -> (parts: [UploadedPart], sha256: String, uploaded: Int, uploadedBytes: Int64)
    {
        let partCount = PartSizing.partCount(objectSize: reader.length, partSize: partSize)
        let window = max(1, options.maxPartsInFlight)
        var wholeObject = SHA256()
        var finished: [UploadedPart] = []
        var uploaded = 0
        var uploadedBytes: Int64 = 0
        finished.reserveCapacity(partCount)
        let budget = options.partBuffers
        let bufferBytes = Int(partSize)
        // Buffers taken from the budget, given back when every part is done and its buffer dropped.
        var taken = 0
        defer { budget.give(taken * bufferBytes) }

        try await withThrowingTaskGroup(of: PartOutcome.self) { group in
            var running = 0
            // The buffer of the last part sent, read into again: window + 1 buffers serve the whole object.
            var spare: ByteBuffer?
            func collect(_ outcome: PartOutcome) {
                finished.append(outcome.part)
                if outcome.sent {
                    uploaded += 1
                    uploadedBytes += outcome.part.size
                }
                spare = outcome.body
                running -= 1
            }
            for number in 1...partCount {
                // A buffer for this part: a finished part's, a new one while the budget has room, else the next of
                // ours to finish; only with none of ours in flight does this upload wait for the budget.
                if spare == nil {
                    if budget.tryTake(bufferBytes) {
                        taken += 1
                    } else if running > 0, let outcome = try await group.next() {
                        collect(outcome)
                    } else {
                        await budget.take(bufferBytes)
                        taken += 1
                    }
                }
                let handoff = BufferHandoff(spare)
                spare = nil
                let body = try await reader.read(Int(min(partSize, reader.remaining)), reusing: handoff)
                wholeObject.update(buffer: body)
                while running >= window, let outcome = try await group.next() { collect(outcome) }
                let store = self.store
                let journal = self.journal
                let fullKey = self.fullKey
                let previous = stored[number]
                let bodyHandoff = BufferHandoff(body)
                let mustMatch = options.resumedPartsMustMatch
                group.addTask {
                    try await Self.sendPart(store: store, fullKey: fullKey, uploadID: uploadID, number: number,
                                            body: bodyHandoff.take()!, previous: previous, mustMatch: mustMatch, journal: journal)
                }
                running += 1
            }
            try await reader.verifyEnd()
            while let outcome = try await group.next() { collect(outcome) }
        }
        finished.sort { $0.number < $1.number }
        return (finished, Array(wholeObject.finalize()).hexString, uploaded, uploadedBytes)
    }

    struct PartOutcome: Sendable {
        var part: UploadedPart
        var sent: Bool
        /// Handed back for reuse.
        var body: ByteBuffer
    }

    /// Sends one part unless the server already holds exactly these bytes.
    private static func sendPart(
        store: S3ObjectStore, fullKey: String, uploadID: String, number: Int, body: ByteBuffer,
        previous: StoredPart?, mustMatch: Bool, journal: (any MultipartUploadJournal)?
    ) async throws -> PartOutcome {
        let digest = SHA256.hash(buffer: body)
        let checksum = Data(digest).base64EncodedString()
        let size = Int64(body.readableBytes)
        if let previous, previous.size == size {
            let matches: Bool
            if let stored = previous.checksumSHA256 {
                matches = stored == checksum
            } else {
                matches = unquoted(previous.etag).lowercased() == Array(Insecure.MD5.hash(buffer: body)).hexString
            }
            if matches {
                let part = UploadedPart(number: number, etag: previous.etag, checksumSHA256: checksum, size: size)
                if !previous.journaled { try await journal?.recordPart(part) }
                return PartOutcome(part: part, sent: false, body: body)
            }
        }
        if previous != nil, mustMatch {
            throw ObjectStoreError(.sourceChanged, operation: "UploadPart \(number)", location: store.client.location(fullKey),
                                   message: "part \(number) stored by an earlier attempt no longer matches the local bytes")
        }
        var request = S3Client.Request(
            method: .PUT, key: fullKey, query: [("partNumber", String(number)), ("uploadId", uploadID)],
            body: body, bodySHA256: digest, operation: "UploadPart \(number)")
        request.startsTransfer = true
        request.headers.append(("x-amz-checksum-sha256", checksum))
        let response = try await store.client.performCollecting(request)
        guard let etag = response.headers.first(name: "ETag") else {
            throw ObjectStoreError(.protocolViolation, operation: "UploadPart \(number)",
                                   location: store.client.location(fullKey), message: "the answer has no ETag")
        }
        if let echoed = response.headers.first(name: "x-amz-checksum-sha256"), echoed != checksum {
            throw ObjectStoreError(.transient, operation: "UploadPart \(number)", location: store.client.location(fullKey),
                                   message: "the server stored a part with another checksum")
        }
        let part = UploadedPart(number: number, etag: etag, checksumSHA256: checksum, size: size)
        try await journal?.recordPart(part)
        return PartOutcome(part: part, sent: true, body: body)
    }

    // MARK: Requests

    private func create() async throws -> String {
        var request = S3Client.Request(method: .POST, key: fullKey, query: [("uploads", "")], headers: headers,
                                       operation: "CreateMultipartUpload")
        request.headers.append(("x-amz-checksum-algorithm", "SHA256"))
        let response = try await client.performCollecting(request)
        guard let root = XMLElementNode.parse(response.data), let id = root.value("UploadId"), !id.isEmpty else {
            throw ObjectStoreError(.protocolViolation, operation: "CreateMultipartUpload", location: location,
                                   message: "the answer holds no UploadId")
        }
        return id
    }

    struct ListedPart: Sendable {
        var number: Int
        var etag: String
        var size: Int64
        var checksumSHA256: String?
    }

    private func listParts(uploadID: String) async throws -> [ListedPart] {
        var parts: [ListedPart] = []
        var marker: String?
        repeat {
            var query: [(name: String, value: String)] = [("uploadId", uploadID), ("max-parts", "1000")]
            if let marker { query.append(("part-number-marker", marker)) }
            let response = try await client.performCollecting(
                S3Client.Request(method: .GET, key: fullKey, query: query, operation: "ListParts"))
            guard let root = XMLElementNode.parse(response.data) else {
                throw ObjectStoreError(.protocolViolation, operation: "ListParts", location: location,
                                       message: "the answer is not XML")
            }
            for part in root.children("Part") {
                guard let number = part.value("PartNumber").flatMap(Int.init), let etag = part.value("ETag") else {
                    continue
                }
                parts.append(ListedPart(number: number, etag: etag, size: Int64(part.value("Size") ?? "") ?? -1,
                                        checksumSHA256: part.value("ChecksumSHA256")))
            }
            marker = root.value("IsTruncated") == "true" ? root.value("NextPartNumberMarker") : nil
        } while marker != nil
        return parts
    }

    /// The parts worth checking against the local bytes: those the server lists, with the checksum the journal
    /// or the server recorded for them.
    private func reconcile(saved: MultipartUploadState, listed: [ListedPart]) -> [Int: StoredPart] {
        let journaled = Dictionary(saved.parts.map { ($0.number, $0) }, uniquingKeysWith: { _, last in last })
        var stored: [Int: StoredPart] = [:]
        for part in listed {
            if let entry = journaled[part.number], unquoted(entry.etag) == unquoted(part.etag) {
                stored[part.number] = StoredPart(etag: part.etag, size: part.size,
                                                 checksumSHA256: part.checksumSHA256 ?? entry.checksumSHA256,
                                                 journaled: true)
            } else {
                // Sent before a crash that came before the journal write: verify it by checksum or MD5 ETag.
                stored[part.number] = StoredPart(etag: part.etag, size: part.size,
                                                 checksumSHA256: part.checksumSHA256, journaled: false)
            }
        }
        return stored
    }

    private func complete(uploadID: String, parts: [UploadedPart]) async throws -> String? {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(XMLText.escape(part.etag))</ETag>"
            xml += "<ChecksumSHA256>\(part.checksumSHA256)</ChecksumSHA256></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let request = S3Client.Request(method: .POST, key: fullKey, query: [("uploadId", uploadID)],
                                       headers: [("Content-Type", "application/xml")], body: ByteBuffer(string: xml),
                                       operation: "CompleteMultipartUpload")
        do {
            let response = try await client.performCollecting(request)
            // A 200 is success only with the result document; anything else (an empty or cut body) is not, and the
            // object at the key is then checked below like after a retried Complete.
            // moto names the document CompleteMultipartUploadResponse.
            if let root = S3Client.document(response.data), ["CompleteMultipartUploadResult", "CompleteMultipartUploadResponse"].contains(root.name) {
                try await confirm(parts: parts)
                return root.value("ETag")
            }
            client.logger.warning("CompleteMultipartUpload answered 200 without a result; checking the object", metadata: ["s3.location": "\(location)"])
            guard let info = try await store.head(key), info.size == reader.length, Self.isObject(info, madeOf: parts) else {
                throw ObjectStoreError(.transient, operation: "CompleteMultipartUpload", location: location,
                                       message: "answered 200 without a result, and the object is not the one the parts make")
            }
            return info.etag
        } catch let error as ObjectStoreError where error.kind == .noSuchUpload {
            // A retried Complete whose first try succeeded finds no upload: accept it if the object is ours.
            if let info = try await store.head(key), info.size == reader.length, Self.isObject(info, madeOf: parts) {
                return info.etag
            }
            throw error
        }
    }

    /// After a successful Complete: the object at the key must have the uploaded size and the composite checksum of
    /// the parts sent (S3 computed it from the bytes it received), so a later step never relies on an object that
    /// is not exactly what was sent.
    private func confirm(parts: [UploadedPart]) async throws {
        guard let info = try await store.head(key) else {
            throw ObjectStoreError(.transient, operation: "CompleteMultipartUpload", location: location, message: "completed, but the object is not there")
        }
        guard info.size == reader.length, Self.isObject(info, madeOf: parts) else {
            throw ObjectStoreError(.protocolViolation, operation: "CompleteMultipartUpload", location: location,
                                   message: "completed, but the object has \(info.size) bytes or another checksum than the \(parts.count) parts sent")
        }
    }

    /// Whether a stored object is the one these parts make: by S3's composite checksum, else by multipart ETag.
    static func isObject(_ info: ObjectInfo, madeOf parts: [UploadedPart]) -> Bool {
        if let checksum = info.checksumSHA256 {
            var hasher = SHA256()
            for part in parts { hasher.update(data: Data(base64Encoded: part.checksumSHA256) ?? Data()) }
            let composite = Data(hasher.finalize()).base64EncodedString()
            // S3 appends the part count; moto does not.
            return checksum == "\(composite)-\(parts.count)" || checksum == composite
        }
        guard let etag = info.etag else { return false }
        var md5 = Insecure.MD5()
        for part in parts {
            guard let bytes = hexBytes(unquoted(part.etag)) else { return false }
            md5.update(data: bytes)
        }
        return unquoted(etag) == "\(Array(md5.finalize()).hexString)-\(parts.count)"
    }
}

func unquoted(_ etag: String) -> String { etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }

func hexBytes(_ hex: String) -> [UInt8]? {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let value = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
            return nil
        }
        bytes.append(value)
        index += 2
    }
    return bytes
}

extension Insecure.MD5 {
    static func hash(buffer: ByteBuffer) -> Insecure.MD5.Digest {
        var hasher = Insecure.MD5()
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize()
    }
}
