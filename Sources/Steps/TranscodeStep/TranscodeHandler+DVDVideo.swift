import ArchiveFormat
import Catalog
import Crypto
import Foundation
import ObjectStore
import PipelineCore
import JobQueue
import Logging
import NIOCore
import SystemIO

extension TranscodeHandler {
    /// A VOB of a DVD-Video folder. The disc's own files are always archived as they are (menus, IFOs and every
    /// part), so the disc can be rebuilt as it was; each title set is also transcoded once, from all its parts
    /// joined, into `VIDEO_TS/VTS_nn.mkv` beside them (a row of its own), with every audio track and the
    /// subpicture subtitles. The part with the lowest number does that work; the others wait for it, then go on.
    func transcodeDVDVideo(
        _ item: TranscodeItem, role: DVDVideo.Role, workBase: String, catalog: TranscodeCatalog, context: JobContext
    ) async throws -> JobOutcome {
        guard case .titleSetPart(let titleSet, _) = role else {
            return try await passRawOn(item, details: ["raw_kept_by_policy": "a DVD-Video menu, kept as it is with the disc's other files"], catalog: catalog, context: context)
        }
        let name = DVDVideo.titleName(titleSet: titleSet)
        let (members, uploadFinished) = try await catalog.groupMembers(of: item, paths: DVDVideo.partPaths(besides: item.path, titleSet: titleSet))
        switch DVDVideo.decide(claimedID: item.job.fileID, titleSet: titleSet, members: members, uploadFinished: uploadFinished) {
        case .wait(let delay, let reason):
            context.logger.debug("DVD title set part waits", metadata: ["file.id": "\(item.job.fileID)", "reason": "\(reason)"])
            return .deferred(delay)
        case .passOn(let leaderID):
            return try await passRawOn(item, details: [
                "raw_kept_by_policy": "part of DVD title set \(name), kept as it is; the set is transcoded as one video with its first part",
                "dvd_title_set_of": leaderID,
            ], catalog: catalog, context: context)
        case .keepRaw(let reasons):
            return try await keepRaw(item, reasons, inspection: nil, catalog: catalog, context: context, logMetadata: ["file.id": "\(item.job.fileID)", "file.path": "\(item.path)"])
        case .join(let parts):
            let joined = workBase + ".vob"
            defer { unlink(joined) }
            try await fetchJoined(parts, to: joined)
            let directory = (item.path as NSString).deletingLastPathComponent
            let partNames = parts.map { ($0.path as NSString).lastPathComponent }
            // The chapters the uploader read from the title set's IFO (or its backup), if it could.
            let information = ["IFO", "BUP"].map { directory + "/" + String(format: "VTS_%02d_0.", titleSet) + $0 }
            let chapters = try await catalog.detail(DVDChapterDetail.key, ofFirstOf: information, besides: item).flatMap(DVDChapterDetail.starts) ?? []
            return try await convert(item, localRaw: joined, workBase: workBase, chapters: chapters, placement: .beside(
                path: directory + "/" + name, name: name,
                rawNote: "DVD-Video: the disc's files are kept as they are; title set \(name) (\(partNames.joined(separator: ", "))) is transcoded as one video",
                rawDetails: ["dvd_title_set": ["title_set": titleSet, "parts": parts.map(\.fileID)]]
            ), catalog: catalog, context: context)
        }
    }

    /// Streams the parts from staging into one local file, in order, checking each part's size and SHA-256.
    func fetchJoined(_ parts: [GroupMember], to path: String) async throws {
        let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
        for part in parts {
            guard let key = part.stagingKey, let expected = part.hash else { throw ArchiveError.stagingObjectMissing(fileID: part.fileID, key: "-") }
            let download: ObjectDownload
            do {
                download = try await staging.get(key)
            } catch let error as ObjectStoreError where error.kind == .notFound {
                throw ArchiveError.stagingObjectMissing(fileID: part.fileID, key: key)
            }
            let start = writer.offset
            var hasher = SHA256()
            for try await chunk in download.body {
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                try await writer.write(chunk)
            }
            let digest = hasher.finalize().hexString
            guard digest == expected, writer.offset - start == part.sizeBytes else {
                throw ArchiveError.contentMismatch(fileID: part.fileID, key: key, expected: expected, actual: digest)
            }
        }
        try await writer.finish()
    }
}
