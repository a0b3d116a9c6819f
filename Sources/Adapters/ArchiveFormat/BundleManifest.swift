import Foundation
import PipelineCore

/// One file inside a bundle, as its manifest lists it.
public struct BundleManifestMember: Codable, Sendable, Hashable {
    public var fileID: Int64
    public var sourceLabel: String
    public var path: String
    public var version: Int
    public var kind: String
    /// The name of the member inside the tar.
    public var member: String
    /// Offset of the member's data in the uncompressed tar.
    public var offset: Int64
    public var size: Int64
    /// SHA-256 of the member's bytes; for a transcoded video, `originalSHA256` is the raw file's.
    public var sha256: String
    public var originalSHA256: String
    public var modifiedAt: Date?
    /// An encrypted file's placement (label, path, name, time) as an age file in base64, readable only with the
    /// source's identity; `sourceLabel` and `path` are then empty, and the member is one age file.
    public var sealed: String?

    public init(fileID: Int64, sourceLabel: String, path: String, version: Int, kind: String, member: String, offset: Int64,
                size: Int64, sha256: String, originalSHA256: String, modifiedAt: Date?, sealed: String? = nil) {
        self.fileID = fileID
        self.sourceLabel = sourceLabel
        self.path = path
        self.version = version
        self.kind = kind
        self.member = member
        self.offset = offset
        self.size = size
        self.sha256 = sha256
        self.originalSHA256 = originalSHA256
        self.modifiedAt = modifiedAt
        self.sealed = sealed
    }

    enum CodingKeys: String, CodingKey {
        case fileID = "file_id", sourceLabel = "source_label", path, version, kind, member, offset, size, sha256
        case originalSHA256 = "original_sha256", modifiedAt = "modified_at", sealed
    }
}

/// A bundle's manifest. The copy inside the tar lists the members; the copy beside the bundle (STANDARD class,
/// readable without a restore) adds where and how the bundle is stored.
public struct BundleManifest: Codable, Sendable {
    public static let format = "personal-backup-bundle/1"
    /// The manifest's own name inside the tar (its last member).
    public static let memberName = ".personal-backup/manifest.json"

    public var format: String = BundleManifest.format
    public var createdAt: Date
    public var members: [BundleManifestMember]
    public var bundleKey: String?
    public var bundleID: Int64?
    public var compression: String?
    public var tarBytes: Int64?
    public var storedBytes: Int64?
    public var storedSHA256: String?
    /// The encryption records (`SourceEncryptionRecord` JSON) of the sources of sealed members, by source id: no
    /// secret (keys only wrapped for the identity's holder), and what lets a rebuild open those members.
    public var encryptedSources: [String: String]?

    public init(createdAt: Date, members: [BundleManifestMember], encryptedSources: [String: String]? = nil) {
        self.createdAt = createdAt
        self.members = members
        self.encryptedSources = encryptedSources
    }

    enum CodingKeys: String, CodingKey {
        case format, createdAt = "created_at", members, bundleKey = "bundle_key", bundleID = "bundle_id", compression
        case tarBytes = "tar_bytes", storedBytes = "stored_bytes", storedSHA256 = "stored_sha256", encryptedSources = "encrypted_sources"
    }

    public static func decode(_ bytes: [UInt8]) throws -> BundleManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(BundleManifest.self, from: Data(bytes))
    }

    package func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

/// The catalog export's name and format (written by the archiver, read by `rebuild-catalog`).
public enum CatalogExportFormat {
    /// The last whole export. Its first line (`type: export`) carries `number`, `catalog_id` and `until_xmin`.
    public static let key = "catalog/catalog.jsonl.gz"
    public static let format = "personal-backup-catalog/1"
    /// Exports of the rows changed since an earlier one, read after the whole one in `number` order: same lines,
    /// a later line for a row replacing an earlier one. The first line (`type: export-changes`) carries `number`,
    /// `catalog_id`, `since_xmin` (the export they continue from) and `until_xmin`.
    public static let changesPrefix = "catalog/changes/"

    public static func changesKey(catalogID: UUID, number: Int64) -> String {
        changesPrefix + catalogID.uuidString.lowercased() + "/" + String(format: "%012lld", number) + ".jsonl.gz"
    }

    /// The catalog id and number a changes key names (nil for another key).
    public static func parseChangesKey(_ key: String) -> (catalogID: UUID, number: Int64)? {
        guard key.hasPrefix(changesPrefix), key.hasSuffix(".jsonl.gz") else { return nil }
        let parts = key.dropFirst(changesPrefix.count).dropLast(".jsonl.gz".count).split(separator: "/")
        guard parts.count == 2, let id = UUID(uuidString: String(parts[0])), let number = Int64(parts[1]) else { return nil }
        return (id, number)
    }
}

/// Why reading or writing an archive format failed.
public typealias FormatError = CodedError<FormatErrorCode>

public enum FormatErrorCode: String, Sendable, Hashable {
    case compression
    /// A tar stream that does not parse: a bad header checksum, a truncated member.
    case malformedTar
}

extension CodedError where Code == FormatErrorCode {
    public static func compression(_ message: String) -> FormatError { FormatError(.compression, "compression failed: \(message)") }
    public static func malformedTar(_ message: String) -> FormatError { FormatError(.malformedTar, "not a valid tar stream: \(message)") }
}

/// Lower-case hex of a digest.
package func hex(_ digest: some Sequence<UInt8>) -> String {
    Array(digest).hexString
}
