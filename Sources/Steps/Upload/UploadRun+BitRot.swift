import ArchiveFormat
import Catalog
import Foundation
import Logging
import NIOCore
import SourceReading
import SystemIO

extension UploadRun {
    /// Whether this run reads `path` again although its size and time are unchanged: a rolling sample of
    /// `checkUnchangedPercent` percent, shifted by the snapshot number, so every file is read within 100/percent runs.
    func isSampledForCheck(_ path: String) -> Bool {
        let percent = configuration.checkUnchangedPercent
        guard percent > 0, let run = snapshot.value?.number else { return false }
        guard percent < 100 else { return true }
        // FNV-1a: the same bucket for a path on every machine and run.
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in path.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01B3 }
        let bucket = Int(hash % 100)
        let start = (run * percent) % 100
        return (bucket - start + 100) % 100 < percent
    }

    /// Reads a file unchanged by size and time again and compares its digest with the catalogued one.
    func checkUnchanged(_ file: SourceFile, path: String, catalogued: CataloguedFile) async -> FileOutcome {
        let (result, read) = await contentHash(of: file)
        let digest: String
        switch result {
        case .success(let value): digest = value
        case .failure(let error):
            await progress.fileFinished(path, outcome: "bit_rot", size: file.size, skippedBytes: max(0, file.size - read))
            return .suspectedBitRot(detail: "size and time unchanged, but it cannot be read any more (\(error))", read: read)
        }
        await progress.fileFinished(path, outcome: digest == catalogued.hash ? "unchanged" : "bit_rot", size: file.size)
        guard digest == catalogued.hash else {
            logger.warning("possible bit rot on the original", metadata: ["ingest.path": "\(path)"])
            return .suspectedBitRot(
                detail: "size and time unchanged since version \(catalogued.version), but the content differs (catalogued \(catalogued.hash?.prefix(12) ?? "?")…, read now \(digest.prefix(12))…)",
                read: read)
        }
        return .checkedUnchanged(read: read)
    }

    /// The file's content hash as the catalog keeps it (SHA-256, or the keyed hash of an encrypted source), or why it
    /// could not be read to the end; and the bytes read either way.
    func contentHash(of file: SourceFile) async -> (hash: Result<String, any Error>, read: Int64) {
        var hasher = ContentHasher(encryption.value?.keys)
        var read: Int64 = 0
        do {
            for try await chunk in reader(for: file) {
                read += Int64(chunk.readableBytes)
                hasher.update(chunk)
            }
        } catch {
            return (.failure(error), read)
        }
        return (.success(hasher.finalize()), read)
    }
}
