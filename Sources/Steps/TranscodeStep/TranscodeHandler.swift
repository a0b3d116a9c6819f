import ArchiveFormat
import Catalog
import Crypto
import Foundation
import Logging
import Media
import NIOCore
import ObjectStore
import PipelineCore
import JobQueue
import SystemIO

/// How the transcoder works: which profile, and where it keeps the raw file and the result while it works.
public struct TranscodeConfiguration: Sendable {
    public var profile: TranscodeProfile
    /// Needs room for one raw file and its transcode (a DVD title set: its parts joined, one title and its
    /// transcode).
    public var workDirectory: String
    /// For crash tests only: the process kills itself (SIGKILL) once it has recorded this many titles of a DVD title
    /// set, before the next.
    public var testCrashAfterTitles: Int?

    public init(profile: TranscodeProfile = .h265, workDirectory: String, testCrashAfterTitles: Int? = nil) {
        self.profile = profile
        self.workDirectory = workDirectory
        self.testCrashAfterTitles = testCrashAfterTitles
    }
}

/// The transcode step: fetch the raw video from staging into a local file (containers such as MOV need seeking),
/// transcode it with libav, decode the result end to end to verify it, upload it to staging and mark the row
/// `transcoded`. A video that cannot be converted is passed on unconverted (still `transcoded`, with the reason in
/// `details.transcode_failed`), so footage is never lost to a bad transcode; a file that is not a video at all
/// becomes `regular`. Before the raw copy may go, `MediaProbe.inspectRaw` reads the raw file in a pass of its own
/// and the output is judged against that, not against what the transcoder decoded: a damaged raw file, restarting
/// timestamps, a changing aspect, or a stream or length the output lacks keep the raw file (archived as it is,
/// `details.kept_raw` says why, the status page lists it). A source uploaded with `--keep-raw` keeps every raw
/// video, and a verified transcode is recorded beside it as a file of its own (`<path>.mp4|mkv`).
public struct TranscodeHandler: JobHandler {
    public let configuration: TranscodeConfiguration
    let staging: any ObjectStore

    public init(configuration: TranscodeConfiguration, staging: any ObjectStore) throws {
        self.configuration = configuration
        self.staging = staging
        try FileManager.default.createDirectory(atPath: configuration.workDirectory, withIntermediateDirectories: true)
    }

    /// One video at a time: the encoder already uses every core.
    public func handle(_ jobs: [ClaimedFile], context: JobContext) async -> [Int64: JobOutcome] {
        var outcomes: [Int64: JobOutcome] = [:]
        for job in jobs {
            if Task.isCancelled { break }
            outcomes[job.fileID] = await transcode(job, context: context)
        }
        return outcomes
    }

    public func housekeeping(context: JobContext, drained: Bool) async throws {}

    func transcode(_ job: ClaimedFile, context: JobContext) async -> JobOutcome {
        let catalog = TranscodeCatalog(client: context.client, logger: context.logger)
        let base = configuration.workDirectory + "/\(job.fileID)-\(UUID().uuidString.lowercased())"
        var rawPath = base + ".raw"
        defer { unlink(rawPath) }
        do {
            guard let item = try await catalog.load(job) else { return .failed("the row disappeared", permanent: true) }
            if let role = DVDVideo.role(ofPath: item.path) {
                return try await transcodeDVDVideo(item, role: role, workBase: base, catalog: catalog, context: context)
            }
            if let clip = AVCHDClip(path: item.path),
               let outcome = try await transcodeAVCHDClip(item, clip: clip, workBase: base, catalog: catalog, context: context) {
                return outcome
            }
            guard let stagingKey = item.stagingKey else { return .failed("file \(job.fileID) has no staging copy", permanent: true) }
            let ext = (item.name as NSString).pathExtension
            if !ext.isEmpty && ext.count <= 8 { rawPath = base + "." + ext }
            try await fetch(stagingKey, to: rawPath, expecting: item)
            let placement: Placement = item.keepRaw
                ? .beside(path: item.path, name: item.name, rawNote: "the source keeps raw videos (--keep-raw)", rawDetails: [:])
                : .replacesRaw
            return try await convert(item, localRaw: rawPath, workBase: base, placement: placement, catalog: catalog, context: context)
        } catch let error as ArchiveError {
            return .failed(error.description, permanent: error.isPermanent)
        } catch {
            return .failed(CatalogDatabase.describe(error), permanent: false)
        }
    }

    /// Where a verified transcode goes.
    enum Placement {
        /// In place of the raw file, which is then removed from staging.
        case replacesRaw
        /// Beside the raw file, as a row of its own named `<path>.<ext>` (`<path>` here is without the extension
        /// the container adds); the raw row goes on with `rawNote` and `rawDetails` in its details.
        case beside(path: String, name: String, rawNote: String, rawDetails: [String: Any])
    }

    /// Inspects, transcodes and verifies a raw video already in a local file, then records the outcome for `item`.
    func convert(
        _ item: TranscodeItem, localRaw rawPath: String, workBase: String, chapters: [ChapterMark] = [], placement: Placement, catalog: TranscodeCatalog,
        context: JobContext
    ) async throws -> JobOutcome {
        let job = item.job
        let started = ContinuousClock.now
        let outputPath = workBase + ".out"
        defer { unlink(outputPath) }
        do {
            guard let stagingKey = item.stagingKey else { return .failed("file \(job.fileID) has no staging copy", permanent: true) }
            let logMetadata: Logger.Metadata = ["file.id": "\(job.fileID)", "source.label": "\(item.sourceLabel)", "file.path": "\(item.path)"]
            let verified: Verified
            switch try await produce(item, localRaw: rawPath, output: outputPath, chapters: chapters) {
            case .notVideo(let reason):
                context.logger.warning("not a video after all; archived as a regular file", metadata: logMetadata.merging(["reason": "\(reason)"]) { $1 })
                return try await catalog.reclassifyAsRegular(item, workerID: context.workerID, reason: reason) ? .completed : .leaseLost
            case .keepRaw(let reasons, let inspection):
                // The output is discarded (the local file goes with this function's cleanup): the raw file is what
                // gets archived, and a person decides.
                return try await keepRaw(item, reasons, inspection: inspection, catalog: catalog, context: context, logMetadata: logMetadata)
            case .failed(let message):
                // Keep the footage: pass the raw file on to the archiver, and say why.
                context.logger.error("transcode failed; the raw file is archived unconverted", metadata: logMetadata.merging(["error": "\(message)"]) { $1 })
                return try await passRawOn(
                    item, details: ["transcode_failed": message, "transcode_profile": configuration.profile.name], catalog: catalog, context: context)
            case .verified(let result):
                verified = result
            }
            let report = verified.report

            // The key carries this claim's fencing token, so a worker that lost its lease writes (and on failure
            // deletes) only its own object, never the result another worker recorded.
            let resultKey = Self.resultKey(raw: stagingKey, leaseToken: job.leaseToken, container: report.container)
            let put = try await upload(verified, from: outputPath, to: resultKey)
            guard context.stillHolds(job) else { return .leaseLost }
            let details = try Self.json(["transcode": verified.summary])
            if case .beside(let path, let name, let rawNote, let rawDetails) = placement {
                // The raw file stays and is archived as it is; the transcode becomes a file of its own beside it.
                let ext = report.container.fileExtension
                guard let companionID = try await catalog.recordTranscodeBeside(
                    item, workerID: context.workerID, resultKey: resultKey, resultSize: put.size, resultHash: put.sha256,
                    companionPath: path + "." + ext, companionName: name + "." + ext,
                    rawDetailsJSON: try Self.json(rawDetails.merging(["raw_kept_by_policy": "\(rawNote); the transcode is archived beside it (details.transcode_path)"]) { $1 }),
                    transcodeDetailsJSON: details)
                else {
                    try? await staging.delete(resultKey)
                    return .leaseLost
                }
                context.logger.info("transcoded; raw kept beside it", metadata: logMetadata.merging([
                    "transcode.file_id": "\(companionID)", "bytes": "\(item.sizeBytes)", "bytes_stored": "\(put.size)",
                    "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
                ]) { $1 })
                return .completed
            }
            guard try await catalog.recordTranscoded(
                item, workerID: context.workerID, resultKey: resultKey, resultSize: put.size, resultHash: put.sha256, detailsJSON: details)
            else {
                try? await staging.delete(resultKey)
                return .leaseLost
            }
            // The raw copy was queued for removal in the same transaction; remove it now (the sweep would too).
            if (try? await staging.delete(stagingKey)) != nil { try? await catalog.finishDelete(stagingKey) }
            context.logger.info("transcoded", metadata: logMetadata.merging([
                "video.codec": "\(report.videoCodec)", "video.duration_seconds": "\(report.duration)", "bytes": "\(item.sizeBytes)",
                "bytes_stored": "\(put.size)", "video.deinterlaced": "\(report.deinterlaced)", "damage": "\(report.damage.count)",
                "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
            ]) { $1 })
            return .completed
        } catch let error as ArchiveError {
            return .failed(error.description, permanent: error.isPermanent)
        } catch {
            return .failed(CatalogDatabase.describe(error), permanent: false)
        }
    }

    /// A transcode that passed every check against its raw file.
    struct Verified {
        var report: TranscodeReport
        var verification: VerificationReport
        var inspection: RawInspection
        /// What `details.transcode` says of it.
        var summary: [String: Any] {
            var summary = TranscodeHandler.describe(report, verification: verification)
            summary["raw_inspection_seconds"] = inspection.elapsed.seconds
            return summary
        }
    }

    /// What came of converting one raw file.
    enum Produced {
        /// `output` holds a transcode that may stand for the raw file.
        case verified(Verified)
        /// No video in it after all (the reason).
        case notVideo(String)
        /// Nothing failed, but the transcode cannot stand for the raw file: the reasons.
        case keepRaw([String], RawInspection?)
        /// libav could not convert it (its message).
        case failed(String)
    }

    /// Inspects the raw video in `rawPath` in a pass of its own, transcodes it into `output` (with `chapters`, when
    /// given) and verifies the result against that inspection. Records nothing.
    func produce(_ item: TranscodeItem, localRaw rawPath: String, output outputPath: String, chapters: [ChapterMark]) async throws -> Produced {
        let source: MediaInfo
        do {
            let path = rawPath
            source = try await blocking { try MediaProbe.probe(path: path) }
        } catch let error as MediaError where [.emptyFile, .notVideo, .unreadable].contains(error.kind) {
            return .notVideo(error.message)
        }

        let profile = configuration.profile
        let metadata = ["original_filename": item.name, "source_label": item.sourceLabel, "source_path": item.path]
        let timeLimit = Transcoder.suggestedTimeLimit(for: source, profile: profile)
        let input = rawPath

        // The raw file on its own, in a pass of its own: what the transcode must match comes from here, not from
        // what the transcoder decoded. Damage, restarting timestamps or a changing aspect keep the raw file
        // without transcoding at all.
        let inspection: RawInspection
        do {
            inspection = try await blocking { try MediaProbe.inspectRaw(path: input, timeLimit: timeLimit) }
        } catch let error as MediaError {
            return .keepRaw(["the raw file could not be inspected: \(error.message)"], nil)
        }
        if !inspection.problems.isEmpty { return .keepRaw(inspection.problems, inspection) }

        let report: TranscodeReport
        let verification: VerificationReport
        do {
            // A tape switched between 4:3 and 16:9: every part shown in the widest aspect, none squeezed.
            let canvas = inspection.aspectChanges.isEmpty ? nil : inspection.widestDisplayAspect
            // A DV tape's recordings, by the camcorder's date and time, as chapters (unless the caller has some).
            let chapters = chapters.isEmpty ? inspection.recordingChapters : chapters
            // The last chapter ends where the video does: with restarting timestamps (a DVD's titles, a camera's
            // recordings) the container's header knows only the first recording's length.
            let end = inspection.mainVideo?.decodedDuration
            report = try await blocking {
                try Transcoder.transcode(
                    input: input, output: outputPath, profile: profile, metadata: metadata, chapters: chapters, chapterEnd: end, canvasAspect: canvas,
                    timeLimit: timeLimit)
            }
            let produced = report
            verification = try await blocking { try MediaProbe.verify(output: outputPath, against: produced) }
        } catch let error as MediaError where [.emptyFile, .notVideo, .unreadable].contains(error.kind) {
            // The container opened, but there is no video in it after all.
            return .notVideo(error.message)
        } catch let error as MediaError {
            return .failed(error.message)
        }
        // Damage the transcoder met while decoding counts too, should the inspection have missed it.
        let reasons = inspection.verdict(output: verification.output).reasons + report.damage.map { "the transcoder met damage: \($0)" }
        if !reasons.isEmpty { return .keepRaw(reasons, inspection) }
        return .verified(Verified(report: report, verification: verification, inspection: inspection))
    }

    /// Puts a verified transcode into staging at `key`. The container may be Matroska when MP4 could not hold a
    /// stream: the key's extension says which.
    func upload(_ verified: Verified, from path: String, to key: String) async throws -> PutResult {
        let contentType = verified.report.container == .mp4 ? "video/mp4" : "video/x-matroska"
        return try await staging.put(key, from: .file(path), options: PutOptions(contentType: contentType))
    }

    /// The raw file goes to the archiver unconverted: the row becomes `transcoded` with the raw key and hash.
    func passRawOn(_ item: TranscodeItem, details: [String: Any], catalog: TranscodeCatalog, context: JobContext) async throws -> JobOutcome {
        guard let stagingKey = item.stagingKey else { return .failed("file \(item.job.fileID) has no staging copy", permanent: true) }
        guard try await catalog.recordTranscoded(
            item, workerID: context.workerID, resultKey: stagingKey, resultSize: item.sizeBytes, resultHash: item.hash, detailsJSON: try Self.json(details))
        else { return .leaseLost }
        return .completed
    }

    /// Nothing failed, but the transcode cannot replace the raw file: the raw file is archived as it is, with the
    /// reasons in `details.kept_raw` for the status page and a person, and a warning in the log.
    func keepRaw(
        _ item: TranscodeItem, _ reasons: [String], inspection: RawInspection?, catalog: TranscodeCatalog, context: JobContext,
        logMetadata: Logger.Metadata
    ) async throws -> JobOutcome {
        context.logger.warning("video kept raw; the raw file is archived unconverted", metadata: logMetadata.merging([
            "reasons": "\(reasons.joined(separator: "; "))",
            "inspection_ms": "\(inspection.map { Int($0.elapsed.seconds * 1000) } ?? 0)",
        ]) { $1 })
        var details: [String: Any] = ["kept_raw": reasons, "transcode_profile": configuration.profile.name]
        if let inspection { details["raw_inspection"] = Self.describe(inspection) }
        return try await passRawOn(item, details: details, catalog: catalog, context: context)
    }

    static func describe(_ inspection: RawInspection) -> [String: Any] {
        var summary: [String: Any] = [
            "format": inspection.formatName, "elapsed_seconds": inspection.elapsed.seconds,
            "damaged_dv_frames": inspection.damagedDVFrames, "aspect_changes": inspection.aspectChanges,
            "streams": inspection.streams.map { stream -> [String: Any] in
                var entry: [String: Any] = [
                    "index": stream.index, "kind": stream.kind.rawValue, "codec": stream.codec, "packets": stream.packets,
                    "corrupt_packets": stream.corruptPackets, "decode_errors": stream.decodeErrors,
                    "timestamp_restarts": stream.restarts.count, "timestamp_jumps": stream.jumps.count,
                ]
                if let first = stream.firstTimestamp, let end = stream.endTimestamp {
                    entry["first_timestamp"] = first
                    entry["end_timestamp"] = end
                }
                if let decoded = stream.decodedDuration { entry["decoded_duration_seconds"] = decoded }
                return entry
            },
        ]
        if let readError = inspection.readError { summary["read_error"] = readError }
        if let truncation = inspection.truncation { summary["truncation"] = truncation }
        return summary
    }

    /// Where a transcode waits in staging: beside the raw key, with the claim's fencing token (and a DVD title's
    /// number) in it.
    static func resultKey(raw: String, leaseToken: Int64, container: TranscodeProfile.Container, title: Int? = nil) -> String {
        "\(raw).transcoded-\(leaseToken)" + (title.map { ".title\($0)" } ?? "") + ".\(container.fileExtension)"
    }

    /// Streams the raw file from staging to a local file, checking its SHA-256 against the catalog.
    func fetch(_ key: String, to path: String, expecting item: TranscodeItem) async throws {
        let writer = try BufferedFileWriter(creating: path, flushSize: 4 << 20)
        try await append(key, to: writer, fileID: item.job.fileID, size: item.sizeBytes, sha256: item.hash)
        try await writer.finish()
    }

    /// Streams one staging object onto the end of `writer`, checking that its size and SHA-256 are the catalog's.
    func append(_ key: String, to writer: BufferedFileWriter, fileID: Int64, size: Int64, sha256: String) async throws {
        let download: ObjectDownload
        do {
            download = try await staging.get(key)
        } catch let error as ObjectStoreError where error.kind == .notFound {
            throw ArchiveError.stagingObjectMissing(fileID: fileID, key: key)
        }
        let written = try await SystemIO.append(download.body, to: writer)
        guard written.sha256 == sha256, written.size == size else {
            throw ArchiveError.contentMismatch(fileID: fileID, key: key, expected: sha256, actual: written.sha256)
        }
    }

    static func describe(_ report: TranscodeReport, verification: VerificationReport) -> [String: Any] {
        [
            "profile": report.profile.name, "settings": report.settings, "container": report.container.rawValue,
            "video_codec": report.videoCodec, "audio_codecs": report.audioCodecs, "duration_seconds": report.duration,
            "frames": report.frameCount, "width": report.width, "height": report.height,
            "display_aspect_ratio": report.displayAspectRatio.description, "deinterlaced": report.deinterlaced,
            "source_field_order": report.sourceFieldOrder.rawValue, "audio_streams": report.audioStreamCount,
            "input_bytes": report.inputSize, "output_bytes": report.outputSize, "damage": report.damage, "notes": report.notes,
            "elapsed_seconds": report.elapsed.seconds,
            "verified": ["decode_errors": verification.decodeErrors, "streams_checked": verification.checks.count],
        ]
    }

    static func json(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}


extension TranscodeProfile {
    /// The setting that names the profile.
    public static let setting = "BACKUP_TRANSCODE_PROFILE"

    /// The profile a program runs with: its `--profile` flag, else `BACKUP_TRANSCODE_PROFILE` (environment or config
    /// file), else h265.
    public static func chosen(flag: String?, setting value: String?) throws(ConfigurationError) -> TranscodeProfile {
        let name = flag ?? value ?? "h265"
        do {
            return try TranscodeProfile.named(name)
        } catch {
            throw ConfigurationError(setting: setting, problem: "unknown profile '\(name)' (use h265, h264 or av1)")
        }
    }
}
