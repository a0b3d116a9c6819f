import Foundation

/// What a file stored alone in the archive (`files/…`) says about itself in its object metadata, so that
/// `rebuild-catalog` can place it even when it was archived after the last catalog export (a bundle has its
/// manifest for that). Text that is not plain ASCII is percent-encoded, as S3 metadata must be ASCII.
public struct SingleObjectMetadata: Sendable, Hashable {
    public var fileID: Int64
    /// SHA-256 of the stored bytes (a transcode's, for a transcoded video).
    public var sha256: String
    public var originalSHA256: String
    /// Where the file came from; nil when they would not fit S3's 2 KB metadata limit (a very long path).
    public var sourceLabel: String?
    public var path: String?
    public var version: Int?
    public var kind: String?
    public var originalSize: Int64?
    public var modifiedAt: Date?
    /// An encrypted file's sealed placement (see `BundleManifestMember.sealed`), in place of label, path and time;
    /// nil when it would not fit the metadata limit (the catalog export has it then).
    public var sealed: String?

    /// S3 allows 2 KB of user metadata in all; the rest of the request's headers need room too.
    static let placementLimit = 1600

    public init(fileID: Int64, sha256: String, originalSHA256: String, sourceLabel: String? = nil, path: String? = nil,
                version: Int? = nil, kind: String? = nil, originalSize: Int64? = nil, modifiedAt: Date? = nil) {
        self.fileID = fileID
        self.sha256 = sha256
        self.originalSHA256 = originalSHA256
        self.sourceLabel = sourceLabel
        self.path = path
        self.version = version
        self.kind = kind
        self.originalSize = originalSize
        self.modifiedAt = modifiedAt
    }

    public var headers: [String: String] {
        var result = ["sha256": sha256, "original-sha256": originalSHA256, "file-id": String(fileID)]
        if let sealed {
            result["encryption"] = "age"
            if let version { result["version"] = String(version) }
            if let kind { result["kind"] = kind }
            if let originalSize { result["original-size"] = String(originalSize) }
            if sealed.count <= Self.placementLimit { result["sealed"] = sealed }
            return result
        }
        if let sourceLabel, let path, let version, let kind {
            let placement = [
                "source-label": Self.encode(sourceLabel), "path": Self.encode(path), "version": String(version), "kind": kind,
            ]
            if placement.reduce(0, { $0 + $1.key.count + $1.value.count }) <= Self.placementLimit {
                result.merge(placement) { $1 }
                if let originalSize { result["original-size"] = String(originalSize) }
                if let modifiedAt { result["modified-at"] = Self.dateFormatter.string(from: modifiedAt) }
            }
        }
        return result
    }

    public init?(headers: [String: String]) {
        guard let fileID = headers["file-id"].flatMap(Int64.init), let sha256 = headers["sha256"],
              let original = headers["original-sha256"] else { return nil }
        self.init(fileID: fileID, sha256: sha256, originalSHA256: original)
        sourceLabel = headers["source-label"].flatMap { $0.removingPercentEncoding }
        path = headers["path"].flatMap { $0.removingPercentEncoding }
        version = headers["version"].flatMap(Int.init)
        kind = headers["kind"]
        originalSize = headers["original-size"].flatMap(Int64.init)
        modifiedAt = headers["modified-at"].flatMap { Self.dateFormatter.date(from: $0) }
        sealed = headers["sealed"]
    }

    /// RFC 3986 unreserved characters and `/` stay as they are; everything else (spaces, `%`, non-ASCII) is encoded.
    static func encode(_ text: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")
        allowed.remove(charactersIn: "%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    nonisolated(unsafe) static let dateFormatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
