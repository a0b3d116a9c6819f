import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import JobQueue
import Logging
import Media
import NIOCore
import SystemIO

extension TranscodeHandler {
    /// A VOB of a DVD-Video folder. The disc's own files are always archived as they are (menus, IFOs and every
    /// part), so the disc can be rebuilt as it was; each title set is also transcoded, from all its parts joined,
    /// into `VIDEO_TS/VTS_nn.mkv` beside them (a row of its own) — or, when its IFO lists several titles, into one
    /// `VIDEO_TS/VTS_nn_titlemm.mkv` per title (`transcodeDVDTitles`) — with every audio track and the subpicture
    /// subtitles. The part with the lowest number does that work; the others wait for it, then go on.
    func transcodeDVDVideo(
        _ item: TranscodeItem, role: DVDVideo.Role, workBase: String, catalog: TranscodeCatalog, context: JobContext
    ) async throws -> JobOutcome {
        guard case .titleSetPart(let titleSet, _) = role else {
            return try await passRawOn(item, details: ["raw_kept_by_policy": "a DVD-Video menu, kept as it is with the disc's other files"], catalog: catalog, context: context)
        }
        let name = DVDVideo.titleName(titleSet: titleSet)
        let (members, uploadFinished) = try await catalog.groupMembers(of: item, paths: DVDVideo.partPaths(besides: item.path, titleSet: titleSet))
        let directory = (item.path as NSString).deletingLastPathComponent
        let group = JoinedVideo(
            name: "DVD title set \(name)", outputPath: directory + "/" + name, outputName: name, memberKey: "dvd_title_set_of", groupKey: "dvd_title_set",
            joinedExtension: "vob", extraDetails: ["title_set": titleSet])
        // What the uploader read from the title set's IFO (or its backup), if it could: chapters, and the cells'
        // play order when it is not the order of the parts.
        let information = ["IFO", "BUP"].map { directory + "/" + String(format: "VTS_%02d_0.", titleSet) + $0 }
        let decision = DVDVideo.decide(claimedID: item.job.fileID, titleSet: titleSet, members: members, uploadFinished: uploadFinished)
        // A set of several titles (a recorder's recordings): one transcode per title, when the IFO fits the parts.
        if case .join(let parts) = decision, let text = try await catalog.detail(DVDTitlesDetail.key, ofFirstOf: information, besides: item),
           let titles = DVDTitlesDetail.titles(text), titles.count > 1 {
            if DVDVideo.titlesFit(titles, size: parts.reduce(0) { $0 + $1.sizeBytes }) {
                return try await transcodeDVDTitles(
                    item, titleSet: titleSet, parts: parts, titles: titles, group: group, workBase: workBase, catalog: catalog, context: context)
            }
            context.logger.warning("the IFO's titles do not fit the title set; transcoded as one video", metadata: ["file.path": "\(item.path)"])
        }
        return try await act(
            on: decision, for: item, group: group, workBase: workBase, catalog: catalog, context: context,
            chapters: {
                let starts = try await catalog.detail(DVDChapterDetail.key, ofFirstOf: information, besides: item).flatMap(DVDChapterDetail.starts) ?? []
                return starts.map { ChapterMark(start: $0) }
            },
            arrange: { joined in
                guard let text = try await catalog.detail(DVDCellOrderDetail.key, ofFirstOf: information, besides: item),
                      let cells = DVDCellOrderDetail.ranges(text) else { return joined }
                let played = workBase + ".played.vob"
                // An IFO that does not fit the parts is not trusted: file order, which loses nothing.
                guard try await blocking({ try Self.copySectors(cells, from: joined, to: played) }) else {
                    context.logger.warning("the IFO's cells do not fit the title set; joined in file order", metadata: ["file.path": "\(item.path)"])
                    return joined
                }
                return played
            })
    }

    /// Files that are one video only when joined (a DVD title set, an AVCHD recording), as the handler records them.
    struct JoinedVideo {
        /// "DVD title set VTS_01", for people.
        var name: String
        /// The joined transcode's path without the container's extension, and its name.
        var outputPath: String
        var outputName: String
        /// The detail naming the leader on the other files ("dvd_title_set_of"), and the one listing the group's
        /// files on the leader ("dvd_title_set").
        var memberKey: String
        var groupKey: String
        var joinedExtension: String
        var extraDetails: [String: Any] = [:]
    }

    /// Does what `decision` says for `item`: wait, pass the file on raw, keep every file raw, or (the leader) join
    /// the files and transcode them beside the originals, with `chapters` when it finds some.
    func act(
        on decision: JoinedGroup.Decision, for item: TranscodeItem, group: JoinedVideo, workBase: String, catalog: TranscodeCatalog,
        context: JobContext, chapters: () async throws -> [ChapterMark] = { [] },
        arrange: (_ joined: String) async throws -> String = { $0 }
    ) async throws -> JobOutcome {
        switch decision {
        case .wait(let delay, let reason):
            context.logger.debug("a file of a joined video waits", metadata: ["file.id": "\(item.job.fileID)", "reason": "\(reason)"])
            return .deferred(delay)
        case .passOn(let leaderID):
            return try await passRawOn(item, details: [
                "raw_kept_by_policy": "a file of \(group.name), kept as it is; the first file transcodes them, joined",
                group.memberKey: leaderID,
            ], catalog: catalog, context: context)
        case .keepRaw(let reasons):
            return try await keepRaw(item, reasons, inspection: nil, catalog: catalog, context: context, logMetadata: ["file.id": "\(item.job.fileID)", "file.path": "\(item.path)"])
        case .join(let parts):
            let joined = workBase + "." + group.joinedExtension
            defer { unlink(joined) }
            try await fetchJoined(parts, to: joined)
            let arranged = try await arrange(joined)
            defer { if arranged != joined { unlink(arranged) } }
            let names = parts.map { ($0.path as NSString).lastPathComponent }
            var details = group.extraDetails
            details["parts"] = parts.map(\.fileID)
            return try await convert(item, localRaw: arranged, workBase: workBase, chapters: try await chapters(), placement: .beside(
                path: group.outputPath, name: group.outputName,
                rawNote: "\(group.name) (\(names.joined(separator: ", "))) is kept as it is and transcoded as one video",
                rawDetails: [group.groupKey: details]
            ), catalog: catalog, context: context)
        }
    }

    /// Writes the sectors of `cells` (2,048 bytes each, counted from the start of `source`) to `destination` in
    /// that order: a title set played as its IFO says. False, with nothing written, when a cell lies beyond the end
    /// of `source` (the IFO and the parts disagree).
    static func copySectors(_ cells: [ClosedRange<UInt32>], from source: String, to destination: String) throws -> Bool {
        let input = try POSIXFile.openForReading(source)
        defer { POSIXFile.closeFile(input) }
        let size = Int64(try POSIXFile.status(fd: input).st_size)
        guard cells.allSatisfy({ (Int64($0.upperBound) + 1) * 2048 <= size }) else { return false }
        let output = try POSIXFile.createExclusive(destination)
        defer { POSIXFile.closeFile(output) }
        for cell in cells {
            var offset = Int64(cell.lowerBound) * 2048
            let end = (Int64(cell.upperBound) + 1) * 2048
            while offset < end {
                let chunk = try POSIXFile.read(fd: input, offset: offset, count: Int(min(end - offset, 4 << 20)))
                try POSIXFile.writeAll(fd: output, chunk, path: destination)
                offset += Int64(chunk.readableBytes)
                if chunk.readableBytes == 0 { break }
            }
        }
        return true
    }

    /// Streams the parts from staging into one local file, in order, checking each part's size and SHA-256.
    func fetchJoined(_ parts: [GroupMember], to path: String) async throws {
        let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
        for part in parts {
            guard let key = part.stagingKey, let expected = part.hash else { throw ArchiveError.stagingObjectMissing(fileID: part.fileID, key: "-") }
            try await append(key, to: writer, fileID: part.fileID, size: part.sizeBytes, sha256: expected)
        }
        try await writer.finish()
    }
}

extension TranscodeHandler {
    /// A clip of an AVCHD camcorder's `BDMV/STREAM`. A recording the camera spread over several clips (its
    /// playlist joins them seamlessly) is transcoded once, from its clips joined, into `<first>-<last>.<ext>`
    /// beside them, and the clips are kept as the camera wrote them. Returns nil for a recording of one clip, or a
    /// clip no playlist names: that goes the usual way.
    func transcodeAVCHDClip(
        _ item: TranscodeItem, clip: AVCHDClip, workBase: String, catalog: TranscodeCatalog, context: JobContext
    ) async throws -> JobOutcome? {
        let playlists = try await catalog.detailValues(AVCHDRecordingsDetail.key, inDirectory: clip.playlistDirectory, besides: item)
        let recording = playlists.sorted { $0.key < $1.key }.lazy
            .flatMap { AVCHDRecordingsDetail.recordings($0.value) }
            .first { $0.contains(clip.clip) }
        guard let recording else {
            // The playlist may not be catalogued yet: wait for the upload to finish before going it alone.
            return try await catalog.uploadFinished(of: item) ? nil : .deferred(JoinedGroup.uploadWait)
        }
        guard recording.count > 1 else { return nil }
        let expected = recording.map { clip.path(ofClip: $0, besides: item.path) }
        let name = "AVCHD recording \(recording.first!)-\(recording.last!)"
        let (members, uploadFinished) = try await catalog.groupMembers(of: item, paths: expected)
        let title = "\(recording.first!)-\(recording.last!)"
        let group = JoinedVideo(
            name: name, outputPath: (item.path as NSString).deletingLastPathComponent + "/" + title, outputName: title,
            memberKey: "avchd_recording_of", groupKey: "avchd_recording", joinedExtension: "m2ts")
        return try await act(
            on: JoinedGroup.decide(claimedID: item.job.fileID, name: name, expected: expected, members: members, uploadFinished: uploadFinished),
            for: item, group: group, workBase: workBase, catalog: catalog, context: context)
    }
}
