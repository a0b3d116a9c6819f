import Crypto
import Foundation
import NIOCore
import PipelineCore

/// Whether an object already stored at a key verifiably holds given content — never judged by a claim in its
/// metadata, which a partial or foreign object could carry as well.
///
/// An object readable without a restore (STANDARD, a restored copy, any object of a `file://` store) is read back
/// and hashed. One that is not (Deep Archive on S3) is judged by what the server computed from the bytes it
/// received: its `x-amz-checksum-sha256` (whole-object, or the composite of the parts' checksums) or its ETag (the
/// MD5, or the MD5 of the parts' MD5s), recomputed here from a local copy of the content with the part layout a put
/// with `options` would use. With neither, the answer is no: the caller uploads again.
public enum StoredContentCheck {
    public static func holds(
        _ info: ObjectInfo, in store: any ObjectStore, sha256: String, size: Int64, options: PutOptions,
        localCopy: @Sendable () async throws -> ObjectByteStream
    ) async throws -> Bool {
        guard info.size == size else { return false }
        if let local = store as? FileSystemObjectStore {
            return try await hashOf(try await local.readingArchivedObjects().get(info.key).body) == sha256
        }
        if info.restore.isReadable {
            return try await hashOf(try await store.get(info.key).body) == sha256
        }
        guard info.checksumSHA256 != nil || info.etag != nil else { return false }
        let multipart = size > Int64(options.multipartThreshold) && size > 0
        let partSize = multipart ? try PartSizing.partSize(objectSize: size, preferred: options.partSize) : max(size, 1)
        let layout = try await PartDigests.compute(try await localCopy(), partSize: partSize)
        guard layout.sha256 == sha256, layout.size == size else { return false }
        if let checksum = info.checksumSHA256 {
            return multipart ? [layout.compositeChecksum, "\(layout.compositeChecksum)-\(layout.parts)"].contains(checksum)
                : checksum == layout.wholeChecksum
        }
        let etag = info.etag.map { unquoted($0).lowercased() }
        return etag == (multipart ? "\(layout.compositeMD5)-\(layout.parts)" : layout.wholeMD5)
    }

    static func hashOf(_ body: ObjectByteStream) async throws -> String {
        var hasher = SHA256()
        for try await chunk in body { chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        return Array(hasher.finalize()).hexString
    }
}

/// The digests S3 computes for an object uploaded in parts of `partSize`, recomputed from its bytes in one pass.
struct PartDigests {
    var size: Int64 = 0
    var parts = 0
    var sha256 = ""
    var wholeChecksum = ""
    var wholeMD5 = ""
    var compositeChecksum = ""
    var compositeMD5 = ""

    static func compute(_ body: ObjectByteStream, partSize: Int64) async throws -> PartDigests {
        var whole = SHA256()
        var wholeMD5 = Insecure.MD5()
        var part = SHA256()
        var partMD5 = Insecure.MD5()
        var inPart: Int64 = 0
        var composite = SHA256()
        var compositeMD5 = Insecure.MD5()
        var result = PartDigests()
        func closePart() {
            composite.update(data: Data(part.finalize()))
            compositeMD5.update(data: Data(partMD5.finalize()))
            part = SHA256()
            partMD5 = Insecure.MD5()
            inPart = 0
            result.parts += 1
        }
        for try await chunk in body {
            var rest = chunk.readableBytesView[...]
            while !rest.isEmpty {
                let take = Int(min(Int64(rest.count), partSize - inPart))
                let slice = rest.prefix(take)
                slice.withUnsafeBytes { bytes in
                    whole.update(bufferPointer: bytes)
                    wholeMD5.update(bufferPointer: bytes)
                    part.update(bufferPointer: bytes)
                    partMD5.update(bufferPointer: bytes)
                }
                inPart += Int64(take)
                result.size += Int64(take)
                rest = rest.dropFirst(take)
                if inPart == partSize { closePart() }
            }
        }
        if inPart > 0 || result.parts == 0 { closePart() }
        let wholeDigest = Data(whole.finalize())
        result.sha256 = Array(wholeDigest).hexString
        result.wholeChecksum = wholeDigest.base64EncodedString()
        result.wholeMD5 = Array(wholeMD5.finalize()).hexString
        result.compositeChecksum = Data(composite.finalize()).base64EncodedString()
        result.compositeMD5 = Array(compositeMD5.finalize()).hexString
        return result
    }
}

extension FileSystemObjectStore {
    /// The same directory, with archived objects readable without a restore: they are local files, so reading
    /// them costs nothing (checks and audits read them; restores still go through the restore emulation).
    public func readingArchivedObjects() async throws -> FileSystemObjectStore {
        var settings = configuration
        settings.archivedObjectsNeedRestore = false
        return try await FileSystemObjectStore(root: root, configuration: settings)
    }
}
