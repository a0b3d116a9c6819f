import Catalog
import Foundation
import JobQueue
import Logging
import Media
import ObjectStore
import PipelineCore
import SystemIO

extension TranscodeHandler {
    /// A DVD title set whose IFO lists several titles (program chains with cells; DVD recorders write each
    /// recording as one): part 1, which leads, transcodes each title on its own into `VIDEO_TS/VTS_nn_titlemm.<ext>`
    /// beside the parts. A title is its chain's cells in play order (sector ranges of the joined parts; a cell
    /// several chains share is in each title), with its own chapters, every audio track and the subpictures,
    /// inspected and verified against its own sectors exactly as a single transcode is.
    ///
    /// Each verified title becomes a row of its own at once (`TranscodeCatalog.recordTitleTranscode`, fenced by
    /// part 1's lease, which stays), so a worker killed between titles loses only the title it was on: the next
    /// claim finds the titles recorded and transcodes the rest. A title that cannot be verified gets no transcode;
    /// its reasons go into part 1's `details.kept_raw` (the status page lists it), and since the disc's files are
    /// always archived as they are, its footage is there raw. When every title was tried, part 1 goes on raw with
    /// `details.transcode_file_ids` and `transcode_paths` naming the titles' rows.
    func transcodeDVDTitles(
        _ item: TranscodeItem, titleSet: Int, parts: [GroupMember], titles: [DVDTitlesDetail.Title], group: JoinedVideo, workBase: String,
        catalog: TranscodeCatalog, context: JobContext
    ) async throws -> JobOutcome {
        guard let stagingKey = item.stagingKey else { return .failed("file \(item.job.fileID) has no staging copy", permanent: true) }
        let directory = (item.path as NSString).deletingLastPathComponent
        var recorded = try await catalog.recordedTitles(of: item)
        if !recorded.isEmpty {
            context.logger.info("resuming a title set: titles already transcoded are kept", metadata: [
                "file.path": "\(item.path)", "titles.done": "\(recorded.keys.sorted())",
            ])
        }
        let joined = workBase + "." + group.joinedExtension
        defer { unlink(joined) }
        let remaining = titles.filter { recorded[$0.number] == nil }
        if !remaining.isEmpty { try await fetchJoined(parts, to: joined) }

        var reasons: [String] = []
        var recordedNow = 0
        for title in remaining {
            guard context.stillHolds(item.job) else { return .leaseLost }
            let name = DVDVideo.titleName(titleSet: titleSet, title: title.number)
            let label = "title \(title.number) (\(name))"
            let logMetadata: Logger.Metadata = ["file.id": "\(item.job.fileID)", "file.path": "\(item.path)", "dvd.title": "\(title.number)"]
            let titleRaw = workBase + ".title.vob"
            let output = workBase + ".title.out"
            defer {
                unlink(titleRaw)
                unlink(output)
            }
            guard try await blocking({ try Self.copySectors(title.cells, from: joined, to: titleRaw) }) else {
                reasons.append("\(label): its cells lie beyond the end of the title set")
                continue
            }
            let chapters = title.chapterStarts.map { ChapterMark(start: $0) }
            switch try await produce(item, localRaw: titleRaw, output: output, chapters: chapters) {
            case .verified(let verified):
                let ext = verified.report.container.fileExtension
                let key = Self.resultKey(raw: stagingKey, leaseToken: item.job.leaseToken, container: verified.report.container, title: title.number)
                let put = try await upload(verified, from: output, to: key)
                guard context.stillHolds(item.job), let (row, inserted) = try await catalog.recordTitleTranscode(
                    item, workerID: context.workerID, number: title.number, resultKey: key, resultSize: put.size, resultHash: put.sha256,
                    path: directory + "/" + name + "." + ext, name: name + "." + ext, detailsJSON: try Self.json(["transcode": verified.summary]))
                else {
                    try? await staging.delete(key)
                    return .leaseLost
                }
                if !inserted { try? await staging.delete(key) }
                recorded[title.number] = row
                recordedNow += 1
                context.logger.info("title transcoded", metadata: logMetadata.merging([
                    "transcode.file_id": "\(row.fileID)", "transcode.path": "\(row.path)", "video.duration_seconds": "\(verified.report.duration)",
                ]) { $1 })
                if let limit = configuration.testCrashAfterTitles, recordedNow >= limit { kill(getpid(), SIGKILL) }
            case .keepRaw(let why, _):
                reasons += why.map { "\(label): \($0)" }
            case .notVideo(let why):
                reasons.append("\(label): no video libav can read: \(why)")
            case .failed(let message):
                reasons.append("\(label): the transcode failed: \(message)")
            }
        }

        let done = titles.compactMap { recorded[$0.number] }
        let names = parts.map { ($0.path as NSString).lastPathComponent }
        var setDetails = group.extraDetails
        setDetails["parts"] = parts.map(\.fileID)
        setDetails["titles"] = titles.map(\.number)
        var details: [String: Any] = [
            "raw_kept_by_policy": "\(group.name) (\(names.joined(separator: ", "))) is kept as it is and transcoded title by title; "
                + "the transcodes are archived beside it (details.transcode_paths)",
            group.groupKey: setDetails,
            "transcode_file_ids": done.map(\.fileID),
            "transcode_paths": done.map(\.path),
        ]
        if !reasons.isEmpty {
            reasons.append("these titles have no transcode; the title set's files are archived as they are")
            details["kept_raw"] = reasons
            details["transcode_profile"] = configuration.profile.name
            context.logger.warning("DVD titles kept raw; the title set's files are archived as they are", metadata: [
                "file.path": "\(item.path)", "reasons": "\(reasons.joined(separator: "; "))",
            ])
        }
        return try await passRawOn(item, details: details, catalog: catalog, context: context)
    }
}
