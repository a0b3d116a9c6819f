import ArchiveFormat
import Catalog
import Crypto
import Foundation
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

public struct VerifyConfiguration: Sendable {
    public var sourceLabel: String?
    /// The share of archive objects checked in this run, those checked longest ago first.
    public var samplePercent: Double
    /// A local copy of the source (the original disc) to re-read and compare with what was archived.
    public var against: String?
    public var concurrency: Int
    /// What opens an encrypted source for `--against`: its catalog hashes are keyed, so comparing needs its key.
    public var keyring = SourceKeyring()

    public init(sourceLabel: String? = nil, samplePercent: Double = 100, against: String? = nil, concurrency: Int = 4) {
        self.sourceLabel = sourceLabel
        self.samplePercent = samplePercent
        self.against = against
        self.concurrency = concurrency
    }
}

public struct VerifyReport: Sendable {
    public var objectsTotal = 0
    public var objectsChecked = 0
    /// Read back and hashed.
    public var contentVerified = 0
    /// Only size and class (the content needs a restore to be read).
    public var sizeOnly = 0
    public var failures: [String] = []
    public var sourceFilesCompared = 0
    /// Files on the local source that differ from, or are missing compared with, what was archived.
    public var sourceWarnings: [String] = []
    public var coverage30Days: Int64 = 0
    public var coverage365Days: Int64 = 0
    public var oldestCheck: Date?

    public var exitCode: Int32 { failures.isEmpty && sourceWarnings.isEmpty ? 0 : 1 }

    public var summaryLines: [String] {
        var lines = ["checked \(objectsChecked) of \(objectsTotal) archive objects: \(contentVerified) read back and matched their SHA-256, "
            + "\(sizeOnly) size and class only (in \(StorageClass.deepArchive) their bytes need a restore), \(failures.count) failed"]
        lines.append("coverage: \(coverage30Days) of \(objectsTotal) objects verified in the last 30 days, \(coverage365Days) in the last year"
            + (oldestCheck.map { "; every object checked since \(RestoreReport.dateText($0))" } ?? ""))
        if sourceFilesCompared > 0 || !sourceWarnings.isEmpty {
            lines.append("source: \(sourceFilesCompared) files re-read and compared with the catalog, \(sourceWarnings.count) warnings")
        }
        lines += failures.map { "FAILED: \($0)" }
        lines += sourceWarnings.map { "WARNING: \($0)" }
        return lines
    }
}

/// `uploader verify`: checks archive objects against the catalog (a rolling sample, so repeated runs cover
/// everything over time) and, with `--against`, the original medium against what was archived.
public struct VerifyRun: Sendable {
    let catalog: RestoreCatalog
    let archive: any ObjectStore
    let configuration: VerifyConfiguration
    let progress: RestoreProgress

    public init(catalog: RestoreCatalog, archive: any ObjectStore, configuration: VerifyConfiguration, progress: RestoreProgress) {
        self.catalog = catalog
        self.archive = archive
        self.configuration = configuration
        self.progress = progress
    }

    public func run() async throws -> VerifyReport {
        var report = VerifyReport()
        if let label = configuration.sourceLabel, try await !catalog.sourceExists(label) {
            throw RestoreError(.invalidRequest, "no source is labelled '\(label)' (uploader sources lists them)")
        }
        let reader = try await archiveReader(archive)
        let readsEverything = archive is FileSystemObjectStore
        let objects = try await catalog.objectsToVerify(sourceLabel: configuration.sourceLabel)
        report.objectsTotal = objects.count
        let count = objects.isEmpty ? 0 : max(1, Int((Double(objects.count) * configuration.samplePercent / 100).rounded(.up)))
        let sample = Array(objects.prefix(count))
        report.objectsChecked = sample.count
        let outcomes = await concurrentMap(sample, limit: max(1, configuration.concurrency)) { object in
            await self.check(object, reader: reader, readsEverything: readsEverything)
        }
        // A check that Ctrl-C cut off is no verdict on its object: none is recorded for it.
        for (object, outcome, detail) in outcomes where !(Task.isCancelled && outcome == "failed") {
            try await catalog.recordVerification(key: object.archiveKey, outcome: outcome, detail: detail)
            switch outcome {
            case "ok": report.contentVerified += 1
            case "size_only": report.sizeOnly += 1
            default: report.failures.append("\(object.archiveKey): \(detail ?? "failed")")
            }
            await progress.event("object", ["key": object.archiveKey, "outcome": outcome, "detail": detail ?? "", "sources": object.sourceLabels])
        }
        try Task.checkCancellation()
        if let against = configuration.against {
            guard let label = configuration.sourceLabel else { throw RestoreError(.invalidRequest, "--against needs --source: which source is on that medium?") }
            try await compareSource(label: label, root: against, report: &report)
        }
        let coverage = try await catalog.verificationCoverage()
        report.coverage30Days = coverage.verifiedWithinDays[30] ?? 0
        report.coverage365Days = coverage.verifiedWithinDays[365] ?? 0
        report.oldestCheck = coverage.oldest
        await progress.event("summary", [
            "objects_total": report.objectsTotal, "objects_checked": report.objectsChecked, "content_verified": report.contentVerified,
            "size_only": report.sizeOnly, "failed": report.failures, "source_files_compared": report.sourceFilesCompared,
            "source_warnings": report.sourceWarnings, "verified_last_30_days": report.coverage30Days, "exit_code": Int(report.exitCode),
        ])
        return report
    }

    /// HEAD (size, class), then the bytes when they are readable without a restore; a bundle's manifest beside it too.
    func check(_ object: ArchiveObjectToVerify, reader: any ObjectStore, readsEverything: Bool) async -> (ArchiveObjectToVerify, String, String?) {
        do {
            guard let info = try await reader.head(object.archiveKey) else { return (object, "failed", "missing from the archive") }
            guard info.size == object.size else { return (object, "failed", "\(info.size) bytes in the archive, the catalog says \(object.size)") }
            if let manifestKey = object.manifestKey {
                let manifest = try BundleManifest.decode(try await reader.getBytes(manifestKey))
                if let stored = manifest.storedSHA256, let expected = object.sha256, stored != expected {
                    return (object, "failed", "its manifest \(manifestKey) records SHA-256 \(stored), the catalog \(expected)")
                }
                if let key = manifest.bundleKey, key != object.archiveKey {
                    return (object, "failed", "its manifest \(manifestKey) names another bundle (\(key))")
                }
            }
            guard info.restore.isReadable || readsEverything else { return (object, "size_only", "\(info.storageClassName): size checked; its bytes need a restore") }
            var hasher = SHA256()
            var size: Int64 = 0
            for try await chunk in try await reader.get(object.archiveKey).body {
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += Int64(chunk.readableBytes)
            }
            let digest = Array(hasher.finalize()).hexString
            guard size == object.size else { return (object, "failed", "\(size) bytes read, the catalog says \(object.size)") }
            if let expected = object.sha256, digest != expected {
                return (object, "failed", "checksum mismatch: its SHA-256 is \(digest), the catalog says \(expected)")
            }
            return (object, "ok", nil)
        } catch {
            return (object, "failed", "\(error)")
        }
    }

    /// Re-reads every file of the source under `root` and compares its SHA-256 with the original's in the catalog.
    func compareSource(label: String, root: String, report: inout VerifyReport) async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RestoreError(.invalidRequest, "--against \(root): not a directory (mount the disc and give its mount point)")
        }
        let locations = try await catalog.files(RestoreSelection(sourceLabel: label))
        // An encrypted source's hashes are HMACs under its dedupe key: the keys given open it, or nothing is compared.
        var opened: SourceUnlock?
        if let first = locations.first(where: \.encrypted) {
            opened = try await RestoreRun.unlock(sourceIDs: [first.sourceID], locations: locations, catalog: catalog, keyring: configuration.keyring)[first.sourceID]
        }
        let unlock = opened
        for location in locations where location.state == "archived" || location.state == "duplicate" {
            guard location.kind != "disc_image", let expected = location.originalHash else { continue }
            let relative = location.rawPathHex.flatMap(RestorePlanner.bytes(hex:)) ?? Array(location.path.utf8)
            let path = String(decoding: Array(root.utf8) + [UInt8(ascii: "/")] + relative, as: UTF8.self)
            let digest: String?
            do {
                digest = try await blocking { () throws -> String? in
                    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
                    defer { try? handle.close() }
                    var hasher = ContentHasher(dedupeKey: unlock?.dedupeKey)
                    while let data = try handle.read(upToCount: 4 << 20), !data.isEmpty { data.withUnsafeBytes { hasher.update($0) } }
                    return hasher.finalize()
                }
            } catch {
                report.sourceWarnings.append("\(location.path): cannot be read on \(root) any more (\(error)); the archived copy is what remains")
                continue
            }
            report.sourceFilesCompared += 1
            guard let digest else {
                report.sourceWarnings.append("\(location.path): missing on \(root)")
                continue
            }
            if digest != expected {
                report.sourceWarnings.append("\(location.path): CHANGED on \(root) since it was archived (SHA-256 \(digest), archived \(expected)): bit rot or an edit; the archive holds the original")
                await progress.event("source_file", ["path": location.path, "outcome": "changed", "sha256": digest, "archived_sha256": expected])
            }
        }
    }
}

/// The archive as checks read it: a file:// archive is a local directory, so reading its objects costs nothing and
/// they are read whatever their class says; an S3 archive is read as it is (Deep Archive objects need a restore).
func archiveReader(_ archive: any ObjectStore) async throws -> any ObjectStore {
    guard let local = archive as? FileSystemObjectStore else { return archive }
    return try await local.readingArchivedObjects()
}
