import ArchiveFormat
import Catalog
import Foundation
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

/// The archiver's side of restores asked for in the browser (issue 21; see `CatalogSchema.browserRestores`). Each
/// housekeeping sweep:
/// 1. ends ready restores whose days are over, and deletes the cached copies of ended restores;
/// 2. for every object a restoring restore still needs: asks the archive for a restore when it is not readable
///    (once: `restore_requests`, shared with `uploader restore`), or, when it is readable, copies it into staging
///    under `cache/` as plain bytes, checked against the catalog's SHA-256 on the way;
/// 3. marks restores whose every object is cached ready.
///
/// Why a copy: S3 cannot end a restored copy early, so "uncache now" needs a copy of our own to delete, and the
/// status server reads only staging (it has no archive access at all). The archive restore is asked for one day,
/// the shortest S3 allows: the copy is made within that day, and the days the member chose count from then.
struct BrowserRestoreCaching {
    let catalog: BrowserRestoreCatalog
    let restoreRequests: RestoreCatalog
    let archive: any ObjectStore
    let staging: any ObjectStore
    /// Where a bundle is fetched and unpacked before its plain copy is stored (bounded by one bundle's size).
    let workDirectory: String
    let logger: Logger

    /// What one sweep did.
    struct Outcome: Sendable, Equatable {
        var cached = 0
        var requested = 0
        var ready: [Int64] = []
        var failed = 0
        var removed = 0
    }

    func run() async throws -> Outcome {
        var outcome = Outcome()
        _ = try await catalog.expire()
        outcome.removed = try await removeEndedCopies()
        for object in try await catalog.objectsToCache() {
            do {
                switch try await prepare(object) {
                case .waiting: continue
                case .requested: outcome.requested += 1
                case .readable:
                    try await copyIntoCache(object)
                    if try await catalog.recordCached(object) {
                        outcome.cached += 1
                    } else {
                        // Uncached while it was being copied: the copy is nobody's.
                        try? await staging.delete(object.cacheKey)
                    }
                }
            } catch let failure as CachingFailure {
                outcome.failed += 1
                logger.warning("a browser restore cannot finish", metadata: ["restore.id": "\(object.restoreID)", "archive.key": "\(object.archiveKey)", "error": "\(failure.message)"])
                try await catalog.fail(restoreID: object.restoreID, error: failure.message)
            } catch {
                // The network or the database: the next sweep tries again.
                logger.warning("restoring an object for the browser failed; retried next sweep", metadata: [
                    "restore.id": "\(object.restoreID)", "archive.key": "\(object.archiveKey)", "error": "\(error)"])
            }
        }
        outcome.ready = try await catalog.finishReady()
        for id in outcome.ready { logger.info("browser restore ready", metadata: ["restore.id": "\(id)"]) }
        return outcome
    }

    /// A reason the restore can never finish (shown on its page), as opposed to a passing error.
    struct CachingFailure: Error {
        let message: String
    }

    enum Readiness { case readable, requested, waiting }

    /// Whether the object can be read now; asks for its restore when nobody has.
    func prepare(_ object: BrowserRestoreObject) async throws -> Readiness {
        guard let info = try await archive.head(object.archiveKey) else {
            throw CachingFailure(message: "archive object \(object.archiveKey) does not exist")
        }
        if let size = object.storedBytes, info.size != size {
            throw CachingFailure(message: "archive object \(object.archiveKey) holds \(info.size) bytes, the catalog says \(size)")
        }
        switch info.restore {
        case .notArchived, .restored:
            return .readable
        case .inProgress:
            return .waiting
        case .archived:
            let tier = RestoreTier(rawValue: object.tier) ?? .bulk
            _ = try await archive.requestRestore(object.archiveKey, days: 1, tier: tier)
            let ready = Date().addingTimeInterval(expectedRestoreTime(storageClass: info.storageClassName, tier: tier).seconds)
            try await restoreRequests.recordRestoreRequested(
                key: object.archiveKey, tier: tier.rawValue, days: 1, storageClass: info.storageClassName, size: info.size,
                expectedReadyAt: ready, requestedFor: "browser restore \(object.restoreID)")
            // Some stores (file://, moto) finish at once.
            if let after = try await archive.head(object.archiveKey), after.restore.isReadable { return .readable }
            return .requested
        }
    }

    /// Copies the object into staging at its cache key: a file stored alone streamed through, a bundle fetched and
    /// unpacked locally first, so that its members can be read at their tar offsets.
    func copyIntoCache(_ object: BrowserRestoreObject) async throws {
        if object.compression == "none" {
            // The store hashes what it writes (`PutResult.sha256`): that is the check of the bytes fetched.
            let download = try await archive.get(object.archiveKey, range: nil)
            let put = try await staging.put(object.cacheKey, from: .stream(download.body, length: download.contentLength), options: PutOptions())
            if let expected = object.storedSHA256, put.sha256 != expected {
                try? await staging.delete(object.cacheKey)
                throw CachingFailure(message: "archive object \(object.archiveKey) does not match the catalog's SHA-256")
            }
            return
        }
        let directory = workDirectory + "/browser-restores"
        try await blocking { try POSIXFile.makeDirectories(directory) }
        let fetched = directory + "/\(object.restoreID)-fetched", plain = directory + "/\(object.restoreID)-plain"
        defer { try? FileManager.default.removeItem(atPath: fetched); try? FileManager.default.removeItem(atPath: plain) }
        let (_, sha256) = try await saveToFile(try await archive.get(object.archiveKey, range: nil).body, path: fetched)
        if let expected = object.storedSHA256, sha256 != expected {
            throw CachingFailure(message: "archive object \(object.archiveKey) does not match the catalog's SHA-256")
        }
        let compression = object.compression
        do {
            try await blocking { try Self.unpack(fetched, compression: compression, to: plain) }
        } catch {
            throw CachingFailure(message: "bundle \(object.archiveKey) cannot be unpacked: \(error)")
        }
        _ = try await staging.put(object.cacheKey, from: .file(plain), options: PutOptions())
    }

    static func unpack(_ source: String, compression: String, to destination: String) throws {
        switch compression {
        case "zstd":
            try ZstdFile.decompress(source, to: destination)
        case "gzip":
            let reader = try GzipFileReader(path: source)
            let writer = try POSIXFile.openForWriting(destination)
            defer { POSIXFile.closeFile(writer) }
            while true {
                let chunk = try reader.read(max: 1 << 20)
                if chunk.isEmpty { break }
                try POSIXFile.writeAll(fd: writer, ByteBuffer(bytes: chunk), path: destination)
            }
        default:
            throw CachingFailure(message: "unknown compression \(compression)")
        }
    }

    /// Deletes the cached copies of restores that ended; what cannot be deleted now is tried again next sweep.
    func removeEndedCopies() async throws -> Int {
        let keys = try await catalog.copiesToRemove()
        guard !keys.isEmpty else { return 0 }
        let failures = await staging.delete(keys: keys)
        let removed = keys.filter { failures[$0] == nil }
        try await catalog.copiesRemoved(removed)
        return removed.count
    }
}
