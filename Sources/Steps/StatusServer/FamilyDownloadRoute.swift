import Accounts
import Catalog
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ObjectStore
import PipelineCore

/// `GET /files/{id}/download`: streams one file the caller may see, in bounded memory (each chunk from the object
/// store is written before the next is read), with its SHA-256 checked on the way: bytes that do not hash to the
/// catalog's value end the response with an error instead of a clean end, so a client never takes a wrong file for
/// a complete one. A file the caller may not see is 404; one whose bytes need a restore first is 409.
enum FamilyDownloadRoute {
    static func add(to router: Router<StatusRequestContext>, auth: FamilyAuth, family: FamilyCatalog, staging: (any ObjectStore)?) {
        router.get("/files/:id/download") { request, context -> Response in
            guard let user = try await auth.caller(request) else { return FamilyRoutes.unauthorized() }
            guard let id = Int64(try context.parameters.require("id")), let download = try await family.download(fileID: id, visibleTo: user) else {
                return FamilyRoutes.notFound()
            }
            return try await stream(download, from: staging)
        }
    }

    /// Streams `download` from staging (its own copy, or a browser restore's cached copy of its archive object),
    /// verified on the way; 409 when its bytes need a restore first.
    static func stream(_ download: FamilyDownload, from staging: (any ObjectStore)?) async throws -> Response {
        guard let read = download.read, let staging else {
            var response = Response.text(
                #"{"error":"this file is not readable now: restore it first (the Restore button on its page, or uploader restore)"}"# + "\n",
                contentType: "application/json")
            response.status = .conflict
            return response
        }
        let body = try await bytes(of: download, read: read, from: staging)
        let encoded = download.name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "download"
        var headers: HTTPFields = [
            .contentType: "application/octet-stream", .contentLength: String(download.size),
            .contentDisposition: "attachment; filename*=UTF-8''\(encoded)",
        ]
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: body))
    }

    /// The file's bytes as a verified stream: the whole staging object, or its range of a cached copy.
    static func bytes(of download: FamilyDownload, read: FamilyDownload.Read, from staging: any ObjectStore) async throws -> VerifiedByteStream {
        let object: ObjectDownload
        switch read {
        case .staging(let key):
            object = try await staging.get(key, range: nil)
            guard object.contentLength == download.size else {
                throw HTTPError(.internalServerError, message: "the stored copy is not the size the catalog records")
            }
        case .cached(let key, let offset):
            if download.size == 0 {
                return VerifiedByteStream(base: nil, expectedSHA256: download.hash, expectedSize: 0)
            }
            object = try await staging.get(key, range: ByteRange(first: offset, last: offset + download.size - 1))
            guard object.contentLength == download.size else {
                throw HTTPError(.internalServerError, message: "the restored copy is shorter than the catalog records")
            }
        }
        return VerifiedByteStream(base: object.body, expectedSHA256: download.hash, expectedSize: download.size)
    }
}

/// A byte stream that hashes what passes and fails at its end unless the size and SHA-256 are the expected ones.
struct VerifiedByteStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    struct Mismatch: Error, CustomStringConvertible {
        let description = "the stored bytes do not match the catalog's SHA-256; the download was cut"
    }

    /// nil for no bytes at all (an empty file read from a cached copy needs no request).
    let base: ObjectByteStream?
    let expectedSHA256: String
    let expectedSize: Int64

    /// Holds one chunk back, so that the last bytes go out only after the whole content was checked: a mismatch
    /// leaves the response short of its Content-Length, which every client reports as an incomplete download.
    struct AsyncIterator: AsyncIteratorProtocol {
        var base: ObjectByteStream.AsyncIterator?
        var hasher = SHA256()
        var count: Int64 = 0
        var held: ByteBuffer?
        var finished = false
        let expectedSHA256: String
        let expectedSize: Int64

        mutating func next() async throws -> ByteBuffer? {
            while !finished {
                guard let chunk = try await base?.next() else {
                    finished = true
                    guard count == expectedSize, Array(hasher.finalize()).hexString == expectedSHA256 else { throw Mismatch() }
                    defer { held = nil }
                    return held
                }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                count += Int64(chunk.readableBytes)
                if count > expectedSize { throw Mismatch() }
                let previous = held
                held = chunk
                if let previous { return previous }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base?.makeAsyncIterator(), expectedSHA256: expectedSHA256, expectedSize: expectedSize)
    }
}
