/// The hooks the end-to-end tests use to kill or slow a real program at a chosen point, read once from the
/// environment when a program starts (`ProgramContext.load`) and handed to the parts that act on them. Nothing
/// else in the code reads these variables; unset, every hook is off.
public struct TestHooks: Sendable, Hashable {
    /// `BACKUP_ARCHIVER_CRASH_AT=<point>`: the archiver SIGKILLs itself there (ArchiveCrashPoint), to prove a restart
    /// recovers.
    public var archiverCrashAt: String?
    /// `BACKUP_UPLOADER_TEST_CRASH_AFTER_UPLOAD=1`: the uploader SIGKILLs itself after a multipart upload completed
    /// and before the catalog row is written.
    public var uploaderCrashAfterUpload: Bool
    /// `BACKUP_UPLOADER_TEST_CRASH_AFTER_MAP=1`: `uploader image` SIGKILLs itself after its image and the image's map
    /// of unreadable sectors are stored and before the row is written.
    public var uploaderCrashAfterImageMap: Bool
    /// `BACKUP_RESTORE_TEST_KILL_AFTER_BYTES=<n>`: a restore SIGKILLs itself after writing n bytes.
    public var restoreKillAfterBytes: Int64?
    /// `BACKUP_TEST_FILE_RESTORE_SECONDS=<s>`: `file://` restores take this long, as Deep Archive's take hours.
    public var fileRestoreDelay: Duration?
    /// `BACKUP_TRANSCODER_CRASH_AFTER_TITLES=<n>`: the transcoder SIGKILLs itself once it recorded n titles of a DVD
    /// title set, between two titles.
    public var transcoderCrashAfterTitles: Int?

    public init(
        archiverCrashAt: String? = nil, uploaderCrashAfterUpload: Bool = false, uploaderCrashAfterImageMap: Bool = false,
        restoreKillAfterBytes: Int64? = nil, fileRestoreDelay: Duration? = nil, transcoderCrashAfterTitles: Int? = nil
    ) {
        self.archiverCrashAt = archiverCrashAt
        self.uploaderCrashAfterUpload = uploaderCrashAfterUpload
        self.uploaderCrashAfterImageMap = uploaderCrashAfterImageMap
        self.restoreKillAfterBytes = restoreKillAfterBytes
        self.fileRestoreDelay = fileRestoreDelay
        self.transcoderCrashAfterTitles = transcoderCrashAfterTitles
    }

    public static func read(from environment: [String: String]) -> TestHooks {
        TestHooks(
            archiverCrashAt: environment["BACKUP_ARCHIVER_CRASH_AT"].flatMap { $0.isEmpty ? nil : $0 },
            uploaderCrashAfterUpload: environment["BACKUP_UPLOADER_TEST_CRASH_AFTER_UPLOAD"] == "1",
            uploaderCrashAfterImageMap: environment["BACKUP_UPLOADER_TEST_CRASH_AFTER_MAP"] == "1",
            restoreKillAfterBytes: environment["BACKUP_RESTORE_TEST_KILL_AFTER_BYTES"].flatMap(Int64.init),
            fileRestoreDelay: environment["BACKUP_TEST_FILE_RESTORE_SECONDS"].flatMap(Double.init).flatMap {
                $0 > 0 ? .milliseconds(Int64($0 * 1000)) : nil
            },
            transcoderCrashAfterTitles: environment["BACKUP_TRANSCODER_CRASH_AFTER_TITLES"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil })
    }
}
