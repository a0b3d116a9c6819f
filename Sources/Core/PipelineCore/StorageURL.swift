/// Where a bucket lives: an S3-compatible bucket with an optional key prefix, or a directory on disk.
///
/// Parsed from `BACKUP_STAGING_URL` / `BACKUP_ARCHIVE_URL`: `s3://bucket/prefix` or `file:///absolute/path`.
public enum StorageURL: Sendable, Hashable, CustomStringConvertible {
    /// `prefix` has no leading slash and, when not empty, ends with exactly one `/`.
    case s3(bucket: String, prefix: String)
    /// An absolute directory path without a trailing slash (except `/` itself).
    case file(path: String)

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Parses `s3://bucket[/prefix]` or `file:///path`. The reason in a thrown error never repeats the input,
    /// so a URL that accidentally carries credentials is not echoed.
    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("s3://") {
            let rest = text.dropFirst("s3://".count)
            let bucket = String(rest.prefix { $0 != "/" })
            guard Self.isValidBucketName(bucket) else {
                throw ParseError(reason: "the bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'")
            }
            var prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
            while prefix.hasSuffix("//") { prefix.removeLast() }
            if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
            self = .s3(bucket: bucket, prefix: prefix)
        } else if text.hasPrefix("file://") {
            let path = String(text.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw ParseError(reason: "a file URL needs an absolute path, as in file:///srv/backup/staging")
            }
            guard !path.split(separator: "/").contains("..") else {
                throw ParseError(reason: "a file URL may not contain '..'")
            }
            // `file:///My%20Disc` and `file:///My Disc` both name the directory `My Disc`.
            guard var decoded = percentDecode(Substring(path)) else {
                throw ParseError(reason: "the file URL has a malformed %-escape")
            }
            while decoded.count > 1, decoded.hasSuffix("/") { decoded.removeLast() }
            self = .file(path: decoded)
        } else {
            throw ParseError(reason: "expected s3://bucket/prefix or file:///path")
        }
    }

    public var description: String {
        switch self {
        case .s3(let bucket, let prefix): "s3://\(bucket)/\(prefix)"
        case .file(let path): "file://\(path)"
        }
    }

    /// Where `key` lives, as a URL to show a person (`s3://bucket/prefix/key`, `file:///dir/key`).
    public func describing(key: String) -> String {
        switch self {
        case .s3(let bucket, let prefix): "s3://\(bucket)/\(prefix)\(key)"
        case .file(let path): "file://\(path == "/" ? "" : path)/\(key)"
        }
    }

    /// S3's rules for new bucket names (lower case, digits, dots, hyphens; starts and ends alphanumeric).
    static func isValidBucketName(_ name: String) -> Bool {
        guard (3...63).contains(name.count) else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        guard name.allSatisfy(allowed.contains) else { return false }
        guard let first = name.first, let last = name.last, first != "-", first != ".", last != "-", last != "." else {
            return false
        }
        return !name.contains("..")
    }
}
