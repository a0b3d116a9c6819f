import Foundation
import PipelineCore

/// A file as the catalog knows it, for the uploader's decisions.
public struct CataloguedFile: Sendable, Hashable {
    public let id: Int64
    public let version: Int
    public let sizeBytes: Int64
    public let modifiedAt: Date?
    public let hash: String?
    public let state: FileState
    /// Deleted, or its deletion was asked for (`ObjectStorageDeleteLog`): it is history, or about to be, so the
    /// same path coming again is stored again as a new version instead of being called unchanged.
    public let deleted: Bool

    /// Whether this row already holds the content that a file of `size` bytes (and `hash`, when known) has: then
    /// nothing new needs storing. A deleted, unreadable or failed row never does.
    public func holdsContent(size: Int64, hash: String? = nil) -> Bool {
        !deleted && state != .unreadable && state != .failed && sizeBytes == size && (hash == nil || self.hash == hash)
    }
}

extension CataloguedFile {
    /// The columns of a LEFT JOIN that may have found no row (then nil).
    init?(joinedID id: Int64?, version: Int?, sizeBytes: Int64?, modifiedAt: Date?, hash: String?, state: String?, deleted: Bool?) {
        guard let id, let version, let sizeBytes, let state else { return nil }
        self.init(
            id: id, version: version, sizeBytes: sizeBytes, modifiedAt: modifiedAt, hash: hash, state: FileState(rawValue: state) ?? .failed,
            deleted: deleted ?? false)
    }
}

/// An upload that started but is not catalogued yet (see the `pending_uploads` table).
public struct PendingUpload: Sendable, Hashable {
    public let id: Int64
    public let stagingKey: String
    public let sizeBytes: Int64
    public let modifiedAt: Date?
    /// The multipart journal's JSON, when a multipart upload was begun.
    public let multipartState: String?
}

/// What a file found on the source is, ready to be catalogued.
public struct IngestedFile: Sendable {
    public var sourceID: Int64
    /// The path inside the source, `/`-separated; invalid UTF-8 bytes escaped as `\xNN`.
    public var path: String
    /// The exact bytes of the path when it is not valid UTF-8.
    public var rawPath: [UInt8]?
    public var name: String
    public var sizeBytes: Int64
    public var modifiedAt: Date?
    public var kind: FileKind
    public var details: [String: String]
    public var degraded: Bool

    public init(sourceID: Int64, path: String, rawPath: [UInt8]?, name: String, sizeBytes: Int64, modifiedAt: Date?,
                kind: FileKind, details: [String: String] = [:], degraded: Bool = false) {
        self.sourceID = sourceID
        self.path = path
        self.rawPath = rawPath
        self.name = name
        self.sizeBytes = sizeBytes
        self.modifiedAt = modifiedAt
        self.kind = kind
        self.details = details
        self.degraded = degraded
    }
}

/// A file about to be read: ``IngestCatalog/lookUp(_:)`` answers what the catalog knows of its path and size.
public struct CatalogLookUp: Sendable {
    public var sourceID: Int64
    public var path: String
    public var size: Int64

    public init(sourceID: Int64, path: String, size: Int64) {
        self.sourceID = sourceID
        self.path = path
        self.size = size
    }
}

public struct CatalogLookUpResult: Sendable {
    /// The newest version of the path, if any.
    public var latest: CataloguedFile?
    /// Some row holds content of this size: hash before sending.
    public var contentOfSizeExists: Bool

    public var pair: (latest: CataloguedFile?, contentOfSizeExists: Bool) { (latest, contentOfSizeExists) }
}

/// A hashed file for ``IngestCatalog/record(_:)``: where its bytes were staged (nil when its hash was already
/// known and nothing was sent) and the pending upload it completes.
public struct IngestRecord: Sendable {
    public var file: IngestedFile
    public var hash: String
    public var stagingKey: String?
    public var pendingID: Int64?
    /// Size and SHA-256 of the bytes in staging when they are not the file's own (an encrypted file's age
    /// ciphertext): the archiver checks and stores those; `hash` stays the dedupe identity.
    public var stored: (size: Int64, sha256: String)?

    public init(file: IngestedFile, hash: String, stagingKey: String?, pendingID: Int64?, stored: (size: Int64, sha256: String)? = nil) {
        self.file = file
        self.hash = hash
        self.stagingKey = stagingKey
        self.pendingID = pendingID
        self.stored = stored
    }
}

/// How the catalog took a file whose bytes were hashed (and possibly staged).
public enum CatalogOutcome: Sendable, Hashable {
    /// A new row in state `staged`; its bytes are in staging under the key given.
    case staged(fileID: Int64, version: Int)
    /// Its content is already held by another row; the row is `duplicate` and any staged copy is not needed.
    case duplicate(fileID: Int64, version: Int, of: Int64)
    /// The same path with the same content is catalogued already: nothing new, any staged copy is not needed.
    case unchanged(fileID: Int64)
    /// Nothing was stored: the content was sent as a duplicate (no bytes) but its holder was deleted meanwhile,
    /// so the bytes must be sent after all.
    case needsContent
}
