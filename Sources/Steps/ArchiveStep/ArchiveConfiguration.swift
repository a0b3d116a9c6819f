import PipelineCore

/// How the archiver packs and stores. Defaults follow the brief: bundles of small files, Deep Archive.
public struct ArchiveConfiguration: Sendable {
    /// Files smaller than this are packed into bundles; larger files and disc images are stored alone.
    public var smallFileThreshold: Int64
    /// A bundle is closed when adding the next member would take it past this size.
    public var bundleTargetSize: Int64
    /// Class of archived data of cold sources (manifests and the catalog export always go to STANDARD).
    public var storageClass: StorageClass
    /// Class of archived data of warm sources: one that reads back without a restore (GLACIER_IR, STANDARD_IA).
    public var warmStorageClass: StorageClass
    /// Target size of a warm source's bundles: small, so that reading one file back reads little. Files of at
    /// least this size are stored alone.
    public var warmBundleTargetSize: Int64
    /// zstd level for bundles that are worth compressing.
    public var compressionLevel: Int32
    /// How often, at most, the catalog export is brought up to date while busy (always at the end of a drain).
    public var catalogExportInterval: Duration
    /// The catalog export is written whole again once the changes written since the last whole one reach this
    /// fraction of its rows (`CatalogExportPolicy.compactFraction`); in between, only changed rows are written.
    public var catalogExportCompactFraction: Double
    /// A delete request is carried out only after this long (the user may change their mind).
    public var deleteGrace: Duration
    /// An `uploading` bundle whose owner's heartbeat is older than this is an orphan.
    public var orphanAfter: Duration
    /// A disc image map in staging that no row names is removed once it is this old (an uploader killed between the
    /// map and the row left it; see `removeOrphanedImageMaps`). The sweep runs at most once per this interval too.
    public var leftoverAge: Duration = .seconds(3600)
    /// Where bundles are assembled (needs room for about two bundles per worker).
    public var workDirectory: String
    /// Single files uploaded at the same time.
    public var singleFileConcurrency: Int
    /// For crash tests only: the process kills itself (SIGKILL) at this point.
    public var crashPoint: ArchiveCrashPoint?

    public init(
        smallFileThreshold: Int64 = 16 << 20, bundleTargetSize: Int64 = 256 << 20, storageClass: StorageClass = .deepArchive,
        warmStorageClass: StorageClass = .glacierInstantRetrieval, warmBundleTargetSize: Int64 = 8 << 20,
        compressionLevel: Int32 = 3, catalogExportInterval: Duration = .seconds(60), catalogExportCompactFraction: Double = 0.25, deleteGrace: Duration = .seconds(30 * 86_400),
        orphanAfter: Duration = .seconds(90), workDirectory: String, singleFileConcurrency: Int = 2, crashPoint: ArchiveCrashPoint? = nil
    ) {
        self.crashPoint = crashPoint
        self.smallFileThreshold = smallFileThreshold
        self.bundleTargetSize = bundleTargetSize
        self.storageClass = storageClass
        self.warmStorageClass = warmStorageClass
        self.warmBundleTargetSize = warmBundleTargetSize
        self.compressionLevel = compressionLevel
        self.catalogExportInterval = catalogExportInterval
        self.catalogExportCompactFraction = catalogExportCompactFraction
        self.deleteGrace = deleteGrace
        self.orphanAfter = orphanAfter
        self.workDirectory = workDirectory
        self.singleFileConcurrency = singleFileConcurrency
    }
}

extension ArchiveConfiguration {
    /// Where a tier's data goes.
    public func storageClass(for tier: SourceTier) -> StorageClass {
        tier == .warm ? warmStorageClass : storageClass
    }

    public func bundleTargetSize(for tier: SourceTier) -> Int64 {
        tier == .warm ? warmBundleTargetSize : bundleTargetSize
    }

    /// A warm file as large as a warm bundle is stored alone: a bundle of one buys nothing.
    public func smallFileThreshold(for tier: SourceTier) -> Int64 {
        tier == .warm ? min(smallFileThreshold, warmBundleTargetSize) : smallFileThreshold
    }
}

/// Points where the crash tests kill the archiver (`BACKUP_ARCHIVER_CRASH_AT`), to prove a restart recovers.
public enum ArchiveCrashPoint: String, Sendable, CaseIterable {
    /// A bundle half assembled: nothing uploaded or recorded yet.
    case midBundle = "mid-bundle"
    /// A bundle uploaded and its row `uploading`, but no file marked archived.
    case bundleUploaded = "bundle-uploaded"
    /// A single file uploaded to the archive, its row not yet updated.
    case singleUploaded = "single-uploaded"
    /// Rows marked archived, staging copies not yet removed.
    case recorded = "recorded"
    /// A catalog export in the bucket, not yet recorded as done in `catalog_exports`.
    case exportUploaded = "export-uploaded"
}
