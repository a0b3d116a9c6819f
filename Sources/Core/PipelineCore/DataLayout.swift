/// Where the programs keep local state under `BACKUP_DATA_DIR`: the one place these paths are spelled.
public struct DataLayout: Sendable, Hashable {
    /// `BACKUP_DATA_DIR` itself.
    public let root: String

    public init(root: String) { self.root = root }

    /// The embedded PostgreSQL cluster (when no `DATABASE_URL` is given).
    public var embeddedCluster: String { root + "/postgres" }
    /// The default `file://` buckets.
    public var defaultStaging: String { root + "/staging" }
    public var defaultArchive: String { root + "/archive" }

    /// Dedupe keys of encrypted sources written on this machine (mode 0700; not scratch: keep it).
    public var encryptionKeys: String { root + "/keys" }

    /// The uploader's local per-source indexes (which files the last run saw, as the catalog had them). Not scratch,
    /// but safe to delete: without it the next run asks the catalog about every file.
    public var uploadIndex: String { root + "/upload-index" }

    /// The status server's partial files of browser uploads (tus), one per open upload. Not scratch: an upload
    /// resumes from here after a restart (without it, its client sends the file again).
    public var browserUploads: String { root + "/browser-uploads" }

    /// Scratch space, safe to delete while no program runs.
    public var scratch: String { root + "/tmp" }
    /// Disc-image members copied while hashed (the uploader reads a disc once).
    public var uploadSpool: String { scratch + "/spool" }
    /// Bundles assembled and catalog exports written by the archiver.
    public var archiverWork: String { scratch + "/archiver" }
    /// Raw videos downloaded and transcoded by the transcoder.
    public var transcoderWork: String { scratch + "/transcoder" }
    /// Bundles fetched by `uploader audit`.
    public var auditWork: String { scratch + "/audit" }
    /// The catalog export fetched by `uploader rebuild-catalog`.
    public var rebuildWork: String { scratch + "/rebuild" }
}
