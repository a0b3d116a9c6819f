import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import SourceReading

/// What `uploader restore` was asked for and how.
public struct RestoreConfiguration: Sendable {
    public var destination: String
    public var selection: RestoreSelection
    /// `--path GLOB`: matched like `upload --exclude` (a pattern without `/` matches a name at any depth).
    public var pathPattern: String?
    public var tier: RestoreTier
    /// How long the restored copy stays readable.
    public var days: Int
    /// Wait for pending restores (polling) instead of exiting with "waiting for the archive".
    public var wait: Bool
    public var pollInterval: Duration
    public var overwrite: Bool
    /// Uncompressed bundles are read member by member with byte-range GETs when at most this many members
    /// (and less than half the bundle's bytes) are needed; otherwise the bundle is downloaded once and unpacked.
    public var rangeMemberLimit: Int
    /// Objects downloaded at the same time.
    public var concurrency: Int
    /// A test hook: the process kills itself (SIGKILL) once this many bytes were written to partial files.
    public var testKillAfterBytes: Int64?
    /// `--identity` and `--passphrase`: what opens the encrypted sources among the files asked for.
    public var keyring = SourceKeyring()
    /// `--snapshot N` or `--as-of DATE` (with a source): the source's tree as it was then.
    public var snapshot: SnapshotChoice?

    public init(destination: String, selection: RestoreSelection, pathPattern: String? = nil, tier: RestoreTier = .standard, days: Int = 7,
                wait: Bool = false, pollInterval: Duration = .seconds(600), overwrite: Bool = false, rangeMemberLimit: Int = 32,
                concurrency: Int = 4, testKillAfterBytes: Int64? = nil) {
        self.destination = destination
        self.selection = selection
        self.pathPattern = pathPattern
        self.tier = tier
        self.days = days
        self.wait = wait
        self.pollInterval = pollInterval
        self.overwrite = overwrite
        self.rangeMemberLimit = rangeMemberLimit
        self.concurrency = concurrency
        self.testKillAfterBytes = testKillAfterBytes
    }

    /// The request in words, recorded with each restore request (`restore-status` shows it).
    public var requestDescription: String {
        var parts: [String] = []
        if let label = selection.sourceLabel { parts.append("--source \(label)") }
        if let pathPattern { parts.append("--path \(pathPattern)") }
        if let hash = selection.hash { parts.append("--hash \(hash)") }
        return parts.joined(separator: " ") + " --to \(destination)"
    }
}

/// One file to write: where it goes under the destination and the bytes it must end up with.
struct FileJob: Sendable {
    let location: CatalogFileLocation
    let path: SafeRelativePath
    /// Size and SHA-256 of the stored content (for a transcoded video, the transcode's).
    let size: Int64
    let sha256: String
    /// For a file of an encrypted source: the stored bytes are an age file, decrypted on the way to disk.
    var decryption: FileDecryption?

    /// What the restored file must be on disk: its plaintext size and hash for an encrypted one.
    var restoredSize: Int64 { decryption?.plaintextSize ?? size }
    var restoredHash: String { decryption?.keyedHash ?? sha256 }
}

/// One archive object (a bundle or a file stored alone) and the files wanted from it.
struct ObjectJob: Sendable {
    struct Bundle: Sendable, Hashable {
        let id: Int64
        let compression: String
        let sha256: String?
    }

    let key: String
    let bundle: Bundle?
    /// The object's size as the catalog records it.
    let size: Int64?
    var files: [FileJob]

    var neededBytes: Int64 { files.reduce(0) { $0 + $1.size } }
}

/// A file that will not be restored by this run, and why.
public struct RestoreProblem: Sendable, Hashable {
    public let path: String
    public let error: RestoreError
}

enum RestorePlanner {
    /// The destination path of a catalogued file: `<label>/<path>`, `~vN` for a version that is not the newest,
    /// and the transcode's extension for a transcoded video (`tape.avi.mp4`: its bytes are MP4).
    static func destinationPath(_ location: CatalogFileLocation) throws -> SafeRelativePath {
        let bytes = location.rawPathHex.flatMap(Self.bytes(hex:)) ?? Array(location.path.utf8)
        var path = try SafeRelativePath(bytes: bytes).prefixed(by: location.sourceLabel)
        if !location.isLatestVersion { path = path.appendingToName("~v\(location.version)") }
        if location.transcoded {
            let ext = location.transcodeContainer == "matroska" ? "mkv" : "mp4"
            if (location.name as NSString).pathExtension.lowercased() != ext { path = path.appendingToName("." + ext) }
        }
        return path
    }

    static func bytes(hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0, !hex.isEmpty else { return nil }
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }

    /// Splits the selected files into jobs per archive object and the files that cannot be restored.
    static func plan(_ locations: [CatalogFileLocation], pattern: ExcludePattern?) -> (objects: [ObjectJob], problems: [RestoreProblem]) {
        var objects: [String: ObjectJob] = [:]
        var order: [String] = []
        var problems: [RestoreProblem] = []
        var taken: Set<SafeRelativePath> = []
        for location in locations {
            let shown = "\(location.sourceLabel)/\(location.path)"
            if let pattern {
                let raw = location.rawPathHex.flatMap(bytes(hex:)) ?? Array(location.path.utf8)
                guard pattern.matches(RawPath(bytes: raw), isDirectory: false) else { continue }
            }
            let path: SafeRelativePath
            do {
                path = try destinationPath(location)
            } catch {
                problems.append(RestoreProblem(path: shown, error: error as? RestoreError ?? RestoreError(.unsafePath, "\(shown): \(error)")))
                continue
            }
            guard location.holderState == "archived", let key = location.archiveKey, let size = location.storedSize,
                  let sha256 = location.storedHash else {
                let why = location.state == "duplicate" ? "a duplicate of file \(location.holderID.map(String.init) ?? "?"), which is \(location.holderState ?? "missing")"
                    : location.state + (location.error.map { " (\($0))" } ?? "")
                problems.append(RestoreProblem(path: shown, error: RestoreError(.notArchived, "\(shown): not in the archive: \(why)")))
                continue
            }
            guard taken.insert(path).inserted else { continue }
            let job = FileJob(location: location, path: path, size: size, sha256: sha256)
            if objects[key] == nil {
                let bundle = location.bundleID.map { ObjectJob.Bundle(id: $0, compression: location.bundleCompression ?? "none", sha256: location.bundleHash) }
                objects[key] = ObjectJob(key: key, bundle: bundle, size: bundle == nil ? size : location.bundleStoredBytes, files: [])
                order.append(key)
            }
            objects[key]!.files.append(job)
        }
        return (order.map { objects[$0]! }, problems)
    }
}
