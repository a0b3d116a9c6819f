import ArchiveFormat
import Catalog
import Crypto
import Foundation
import Logging
import NIOCore
import ObjectStore
import PipelineCore
import SystemIO

/// Bundles that are mostly dead (deleted members, see `DeleteRequests`) are rewritten: the bundle is restored
/// when its class needs it (a Bulk restore, requested once; later sweeps wait for it), read, each live member's
/// bytes checked against the catalog and copied back to staging, and the members put back into the queue in one
/// transaction that marks the old bundle `replaced`. The archiver then packs them into new bundles as usual, and
/// the old bundle is removed only once every member it held is archived again (`retireUnusedBundles`).
extension ArchiveHandler {
    func rewriteBundles(catalog: ArchiveCatalog, logger: Logger) async throws {
        for bundle in try await catalog.bundlesToRewrite(limit: 5) {
            do {
                try await rewrite(bundle, catalog: catalog, logger: logger)
            } catch {
                logger.warning("bundle rewrite postponed", metadata: ["bundle.id": "\(bundle.id)", "error": "\(CatalogDatabase.describe(error))"])
            }
        }
    }

    func rewrite(_ bundle: BundleToRewrite, catalog: ArchiveCatalog, logger: Logger) async throws {
        guard var info = try await archive.head(bundle.archiveKey) else {
            logger.error("a bundle marked for rewriting is missing from the archive", metadata: ["bundle.id": "\(bundle.id)", "archive.key": "\(bundle.archiveKey)"])
            return
        }
        if !info.restore.isReadable {
            if !bundle.restoreRequested {
                // Bulk: the cheapest tier; this is housekeeping, not a user waiting.
                _ = try await archive.requestRestore(bundle.archiveKey, days: 7, tier: .bulk)
                try await catalog.noteRestoreRequested(bundleID: bundle.id)
                logger.info("restore requested to rewrite a mostly dead bundle", metadata: ["bundle.id": "\(bundle.id)"])
            }
            guard let restored = try await archive.head(bundle.archiveKey), restored.restore.isReadable else { return }
            info = restored
        }

        let base = configuration.workDirectory + "/rewrite-\(bundle.id)-\(UUID().uuidString.lowercased())"
        defer {
            unlink(base)
            unlink(base + ".tar")
        }
        // Download, checking the stored bytes against the bundle's recorded SHA-256.
        let (_, digest) = try await saveToFile(try await archive.get(bundle.archiveKey).body, path: base)
        if let expected = bundle.hash, expected != digest {
            throw ArchiveError.verificationFailed(key: bundle.archiveKey, problem: "its SHA-256 is \(digest), the catalog says \(expected)")
        }
        let tarPath = bundle.compression == "zstd" ? base + ".tar" : base
        if bundle.compression == "zstd" {
            try await blocking { try ZstdFile.decompress(base, to: base + ".tar") }
        }

        var stagingKeys: [Int64: String] = [:]
        for member in try await catalog.liveMembers(bundleID: bundle.id) {
            let bytes = try await blocking { try Self.read(tarPath, offset: member.offset, count: Int(member.size)) }
            let actual = hex(SHA256.hash(data: bytes))
            guard actual == member.sha256 else {
                throw ArchiveError.verificationFailed(key: bundle.archiveKey, problem: "member for file \(member.fileID) has SHA-256 \(actual), not \(member.sha256)")
            }
            let key = "rewrite/\(bundle.id)/\(member.fileID)"
            _ = try await staging.put(key, bytes: bytes)
            stagingKeys[member.fileID] = key
        }
        let restaged = try await catalog.restage(bundleID: bundle.id, stagingKeys: stagingKeys)
        housekeepingState.noteArchived()
        logger.info("bundle rewritten: live members back in the queue, the old bundle kept until they are archived again", metadata: [
            "bundle.id": "\(bundle.id)", "files": "\(restaged)", "bytes_stored": "\(info.size)",
        ])
    }

    static func read(_ path: String, offset: Int64, count: Int) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FileIOError(operation: "open", path: path, errno: ENOENT) }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let data = try handle.read(upToCount: count) ?? Data()
        guard data.count == count else { throw FileIOError(operation: "read", path: path, errno: EIO) }
        return Array(data)
    }
}
