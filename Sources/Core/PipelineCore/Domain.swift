/// What a catalogued file is, which decides the path it takes through the pipeline.
public enum FileKind: String, Sendable, CaseIterable, Codable {
    /// Raw home video: transcoded before it is archived.
    case video
    /// Any other file: archived as is, small ones packed into bundles.
    case regular
    /// A whole disc kept as an ISO image.
    case discImage = "disc_image"
}

/// The life of one row of `ObjectStorageFiles` (see docs/architecture.md for the transitions).
public enum FileState: String, Sendable, CaseIterable, Codable {
    /// Read into a local spool directory (`uploader upload --spool`), not in staging yet: `uploader send` moves it
    /// to `staged`. No worker claims it, and no source holding one is safe to destroy.
    case spooled
    case staged
    case transcoding
    case transcoded
    case archiving
    case archived
    /// Its content is already archived by another row (`duplicate_of`).
    case duplicate
    /// Gave up after the last attempt; `error` says why.
    case failed
    /// The source could not be read; `error` says why.
    case unreadable

    /// States in which a worker holds a lease on the row.
    public static let leased: [FileState] = [.transcoding, .archiving]

    /// States after which nothing more will happen to the row without a person acting.
    public var isFinal: Bool {
        switch self {
        case .archived, .duplicate, .failed, .unreadable: true
        case .spooled, .staged, .transcoding, .transcoded, .archiving: false
        }
    }
}

/// Which store holds the current copy of a file's bytes (`ObjectStorageFiles.storage`).
public enum StorageArea: String, Sendable, CaseIterable, Codable {
    case staging
    case archive
}

/// The programs of the pipeline, as recorded in the `workers` table.
public enum WorkerRole: String, Sendable, CaseIterable, Codable {
    case uploader
    case transcoder
    case archiver
    case statusServer = "status-server"
    case pipeline
}
