import Foundation
import PipelineCore

/// Maps object keys to paths under a root directory so that no key can reach outside it.
///
/// A key is stored at `root/key` (so a file bucket stays browsable with ordinary tools). Keys S3 would accept but a
/// directory tree cannot hold safely are refused with ``ObjectStoreError/Kind-swift.struct/invalidKey``: empty
/// keys, a leading or trailing `/`, `//`, `.` and `..` components, NUL bytes, components over 255 bytes, and
/// anything under the store's own `.objectstore/` directory.
struct FileKeyMapping: Sendable {
    /// Holds temporary files and metadata sidecars; never visible as keys.
    static let internalDirectoryName = ".objectstore"

    let root: String

    var internalDirectory: String { root + "/" + Self.internalDirectoryName }
    var temporaryDirectory: String { internalDirectory + "/tmp" }
    var metadataDirectory: String { internalDirectory + "/meta" }

    func validate(_ key: String, operation: String) throws -> String {
        func refuse(_ reason: String) -> ObjectStoreError {
            ObjectStoreError(.invalidKey, operation: operation, location: "file://\(root)/\(key)", message: reason)
        }
        guard !key.isEmpty else { throw refuse("the key is empty") }
        guard key.utf8.count <= 1024 else { throw refuse("the key is longer than 1024 bytes") }
        guard !key.utf8.contains(0) else { throw refuse("the key contains a NUL byte") }
        let components = key.split(separator: "/", omittingEmptySubsequences: false)
        for component in components {
            if component.isEmpty { throw refuse("the key has an empty path component (a leading, trailing or double '/')") }
            if component == "." || component == ".." { throw refuse("the key has a '.' or '..' component") }
            if component.utf8.count > 255 { throw refuse("a path component of the key is longer than 255 bytes") }
        }
        if components.first.map(String.init) == Self.internalDirectoryName {
            throw refuse("keys under \(Self.internalDirectoryName)/ are reserved for the store's own files")
        }
        return key
    }

    func objectPath(_ key: String) -> String { root + "/" + key }
    func sidecarPath(_ key: String) -> String { metadataDirectory + "/" + key + ".json" }
}

/// What S3 keeps beside an object and a directory cannot: class, content type, metadata, checksum, restore.
///
/// A plain object (STANDARD, no content type, no metadata: every staged and spooled file) keeps only its size and
/// SHA-256, in the extended attribute ``attributeName`` of its own inode, set before the file is fsynced: no second
/// file is made and renamed per object, and the checksum is as durable as the bytes. Every other object, and a plain
/// one on a file system without user extended attributes, has a JSON sidecar under `.objectstore/meta`. A sidecar
/// names the inode and size of the data file it describes. The data file is renamed into place first, the sidecar
/// second, so after a crash between the two the old sidecar no longer matches and is ignored instead of describing
/// the wrong bytes. Where an object has the attribute, it wins over any sidecar (one left by an earlier object at
/// the same key).
struct ObjectSidecar: Codable, Sendable, Hashable {
    var inode: UInt64
    var size: Int64
    var sha256: String
    var storageClass: String
    var contentType: String?
    var metadata: [String: String]
    /// When the emulated restore of an archived object ends; nil when none was requested.
    var restoredUntil: Date?
    /// When that restore completes (emulating Deep Archive's hours, see `restoreDelay`); nil: at once.
    var restoreReadyAt: Date?

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension ObjectSidecar {
    /// The extended attribute of a plain object: its size (8 bytes, little-endian) and its SHA-256 (32 bytes).
    /// Short, so that it fits inside an ext4 inode of 256 bytes (no extra block per object).
    static let attributeName = "user.backup.sha256"
    static let attributeLength = 40

    /// Nothing beyond size and checksum to keep: the class is STANDARD, and no type, metadata or restore is set.
    var isPlain: Bool {
        storageClass == StorageClass.standard.rawValue && contentType == nil && metadata.isEmpty && restoredUntil == nil
            && restoreReadyAt == nil
    }

    /// The attribute's value for this sidecar (nil: not plain, or the checksum is not 32 bytes of hex).
    var attributeValue: [UInt8]? {
        guard isPlain, let digest = hexBytes(sha256), digest.count == 32 else { return nil }
        return withUnsafeBytes(of: UInt64(size).littleEndian) { Array($0) } + digest
    }

    /// A plain object's sidecar from its attribute, when the attribute is well formed and names the file's size.
    init?(attribute value: [UInt8], inode: UInt64, size: Int64) {
        guard value.count == Self.attributeLength else { return nil }
        let recorded = value[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard recorded == UInt64(size) else { return nil }
        self.init(inode: inode, size: size, sha256: Array(value[8...]).hexString, storageClass: StorageClass.standard.rawValue,
                  contentType: nil, metadata: [:], restoredUntil: nil)
    }
}
