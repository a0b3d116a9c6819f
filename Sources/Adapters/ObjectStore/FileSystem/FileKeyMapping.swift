import Foundation

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
/// A sidecar names the inode and size of the data file it describes. The data file is renamed into place first,
/// the sidecar second, so after a crash between the two the old sidecar no longer matches and is ignored instead
/// of describing the wrong bytes.
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
