import CLibAV

/// What an independent pass over a raw video found: every stream with its packets and timestamp span, and whatever
/// makes a transcode an unsafe replacement for it (read errors, damaged or undecodable packets, timestamps that
/// restart or jump, a picture aspect that changes mid-file, a file shorter than its header says).
///
/// Made by `MediaProbe.inspectRaw`, which shares nothing with the transcode but the file: the transcoder's own
/// report says what it decoded, this says what the file holds, so a transcode that stopped at a read error or
/// dropped a stream cannot vouch for itself.
public struct RawInspection: Sendable, Hashable {
    public struct Stream: Sendable, Hashable {
        public var index: Int
        public var kind: StreamInfo.Kind
        public var codec: String
        /// Packets demuxed.
        public var packets: Int = 0
        /// Seconds: the first packet timestamp, and the end (timestamp + duration) of the latest one. nil when no
        /// packet carried a timestamp.
        public var firstTimestamp: Double?
        public var endTimestamp: Double?
        /// Packets the demuxer flagged corrupt.
        public var corruptPackets = 0
        /// Packets the decoder refused, frames it reported broken or concealed, damaged DV blocks. Only video and
        /// audio are decoded.
        public var decodeErrors = 0
        /// Measured by decoding (video: first frame to end of last; audio: samples / rate); nil when not decoded.
        public var decodedDuration: Double?
        /// Video frames or audio samples decoded.
        public var decodedFrames: Int?
        /// One frame in seconds (the duration tolerance).
        public var frameDuration: Double?
        /// Timestamps going backwards (a second recording after the first, an MPEG-TS restart) or jumping forward
        /// (an HDV scene break), one line each, in file order.
        public var restarts: [String] = []
        public var jumps: [String] = []

        /// The span of the packet timestamps in seconds (meaningless when timestamps restart).
        public var packetSpan: Double? {
            guard let firstTimestamp, let endTimestamp else { return nil }
            return endTimestamp - firstTimestamp
        }

        var label: String { "\(kind.rawValue) stream \(index) (\(codec))" }
    }

    public var path: String
    public var formatName: String
    public var streams: [Stream]
    /// The stream the transcoder encodes (the first non-cover-art video stream libav ranks best).
    public var mainVideoIndex: Int
    /// av_read_frame failed before the end of the file; reading stopped there.
    public var readError: String?
    /// DV frames whose DIF blocks are out of place or flagged with errors by the recording device.
    public var damagedDVFrames = 0
    /// Main video frames the file's own index lists (AVI, MOV), when it has one; fewer packets read means frames
    /// the demuxer had to skip (a damaged chunk it resynchronised past).
    public var indexedVideoFrames: Int?
    /// The display aspect ratio of the decoded picture changed ("4:3 → 16:9 at 12.4 s"), one line per change.
    public var aspectChanges: [String] = []
    /// The widest display aspect ratio of the main video's frames: the canvas a transcode shows every part in
    /// (narrower parts pillarboxed), so that no part is squeezed.
    public var widestDisplayAspect: Rational?
    /// The recordings of a DV tape captured as one file, told apart by the date and time the camcorder stamps in
    /// every frame: where each starts (seconds into the video) and when it was recorded. Empty when the frames
    /// carry no stamp; one entry for a single recording.
    public var recordings: [Recording] = []

    public struct Recording: Sendable, Hashable {
        public var start: Double
        public var recordedAt: DVRecordingStamp
    }

    /// The recordings as chapters titled with their date and time ("Recorded 2004-06-12 14:03:22"), when there is
    /// more than one.
    public var recordingChapters: [ChapterMark] {
        recordings.count < 2 ? [] : recordings.map { ChapterMark(start: $0.start, title: "Recorded \($0.recordedAt)") }
    }

    /// The main video ends well before the duration the file's header declares.
    public var truncation: String?
    /// Wall-clock time of the inspection.
    public var elapsed: Duration = .zero

    public var mainVideo: Stream? { streams.first { $0.index == mainVideoIndex } }
    public func streams(_ kind: StreamInfo.Kind) -> [Stream] { streams.filter { $0.kind == kind } }

    /// What is wrong with the raw file on its own, human readable; empty for a clean file. Any entry means the raw
    /// file must be kept: a transcode of it cannot be complete or faithful.
    public var problems: [String] {
        var problems: [String] = []
        var damage: [String] = []
        if let readError { damage.append(readError) }
        let corrupt = streams.reduce(0) { $0 + $1.corruptPackets }
        if corrupt > 0 { damage.append("\(corrupt) packets flagged corrupt by the demuxer") }
        if damagedDVFrames > 0 { damage.append("\(damagedDVFrames) DV frames with damaged or error-flagged blocks") }
        if let indexed = indexedVideoFrames, let video = mainVideo, video.packets < indexed {
            damage.append("only \(video.packets) of the \(indexed) video frames the file's index lists could be read")
        }
        for stream in streams where stream.decodeErrors > 0 {
            damage.append("\(stream.decodeErrors) broken or concealed packets in \(stream.label)")
        }
        if let truncation { damage.append(truncation) }
        if !damage.isEmpty { problems.append("the raw file has read or decode errors: " + damage.joined(separator: "; ")) }
        // Timestamps that restart (separate recordings in one file) are not a problem of the raw file either: the
        // transcoder plays the recordings one after another, each a chapter, and the lengths are compared recording
        // by recording (`StreamMeter`). A jump forward may be a gap in one stream only: shifting it would put sound
        // and picture apart, so it keeps the raw file.
        for stream in streams where !stream.jumps.isEmpty {
            problems.append("timestamps jump in \(stream.label): " + Self.summarise(stream.jumps))
        }
        // An aspect change is not a problem of the raw file: the transcoder shows every part in the widest aspect's
        // canvas (`Transcoder.transcode(canvasAspect:)`), narrower parts pillarboxed, none squeezed.
        return problems
    }

    /// Compares a transcode's output, as decoded end to end (`VerificationReport.output`), with the raw file:
    /// `keepRaw` when the raw file has problems of its own, a raw audio, subtitle or extra video stream has no
    /// counterpart in the output, or the output's video or an audio stream lasts longer or shorter than the raw
    /// one by more than a frame.
    public func verdict(output: MediaInfo) -> RawVerdict {
        var reasons = problems
        let outputAudio = output.audioStreams
        for (position, raw) in streams(.audio).enumerated() {
            guard position < outputAudio.count else {
                reasons.append("\(raw.label) has no counterpart in the output")
                continue
            }
            if let reason = Self.durationMismatch(raw, outputAudio[position]) { reasons.append(reason) }
        }
        let outputSubtitles = output.streams.filter { $0.kind == .subtitle }
        for raw in streams(.subtitle).dropFirst(outputSubtitles.count) {
            reasons.append("\(raw.label) has no counterpart in the output")
        }
        let outputVideo = output.streams.filter { $0.kind == .video }
        for raw in streams(.video).filter({ $0.index != mainVideoIndex }).dropFirst(max(0, outputVideo.count - 1)) {
            reasons.append("\(raw.label) has no counterpart in the output")
        }
        if let video = mainVideo {
            if let outputVideo = output.video {
                if let reason = Self.durationMismatch(video, outputVideo) { reasons.append(reason) }
            } else {
                reasons.append("\(video.label) has no counterpart in the output")
            }
        }
        return reasons.isEmpty ? .transcodeIsFaithful : .keepRaw(reasons)
    }

    static func durationMismatch(_ raw: Stream, _ output: StreamInfo) -> String? {
        guard let rawDuration = raw.decodedDuration ?? raw.packetSpan else { return nil }
        guard let outputDuration = output.decodedDuration else { return "\(raw.label): its output stream has no decodable data" }
        // Each recording boundary may round by a frame.
        let boundaries = Double(raw.restarts.count)
        let tolerance = max(raw.frameDuration ?? 0, output.frameDuration ?? 0) * (1 + boundaries) + 0.002
        let allowance = output.kind == .audio ? StreamInfo.primingAllowance(output) : 0
        let difference = outputDuration - rawDuration
        guard difference < -tolerance || difference > tolerance + allowance else { return nil }
        return "\(raw.label) lasts \(seconds(rawDuration)) s in the raw file but \(seconds(outputDuration)) s in the output (tolerance \(seconds(tolerance)) s)"
    }

    static func summarise(_ lines: [String]) -> String {
        lines.count <= 3 ? lines.joined(separator: ", ") : lines.prefix(3).joined(separator: ", ") + " and \(lines.count - 3) more"
    }
}

/// Whether the raw file may be replaced by its transcode.
public enum RawVerdict: Sendable, Hashable {
    case transcodeIsFaithful
    /// Keep the raw file; the reasons are for people (the catalog row, the status page, the log).
    case keepRaw([String])

    public var reasons: [String] {
        if case .keepRaw(let reasons) = self { return reasons }
        return []
    }
}

extension MediaProbe {
    /// Timestamps that go forward by more than this within a stream are a jump (a scene break, a gap in the
    /// recording). Subtitle and data streams are sparse and are only checked for going backwards.
    public static let timestampJumpLimit = Discontinuity.forwardLimit
    /// Going back by more than this below the highest timestamp so far is a restart; less is reordering (Matroska
    /// and others carry presentation times only, which B-frames put out of order by a few frames).
    static let timestampRestartLimit = Discontinuity.backLimit

    /// Reads the raw file end to end, independently of any transcode: demuxes every packet (per stream: kind,
    /// count, timestamp span, discontinuities, corrupt flags), decodes the main video (errors, concealment, the
    /// picture's aspect frame by frame) and every audio stream (errors, length), checks DV frames' DIF blocks, and
    /// notes a read error before the end or a file shorter than its header says. Blocking: run it off the
    /// cooperative pool. Throws only when the file cannot be opened at all or `timeLimit` passes.
    public static func inspectRaw(path: String, timeLimit: Duration? = nil) throws(MediaError) -> RawInspection {
        let started = ContinuousClock.now
        let deadline = Deadline(timeLimit)
        let input = try InputFile(path: path, deadline: deadline)
        let mainVideo = mainVideoIndex(of: input)
        var inspection = RawInspection(path: path, formatName: input.formatName, streams: [], mainVideoIndex: mainVideo ?? -1)
        if let mainVideo {
            // Formats that build their index while reading (MPEG-PS, Matroska cues) list keyframes only, never more
            // entries than packets; AVI and MOV list every frame from the header.
            let entries = Int(avformat_index_get_entries_count(input.stream(mainVideo)))
            if entries > 0 { inspection.indexedVideoFrames = entries }
        }
        var trackers: [Int: StreamTracker] = [:]
        let packet = try Packet()
        let frame = try Frame()

        func tracker(_ index: Int) -> StreamTracker {
            if let existing = trackers[index] { return existing }
            // MPEG-PS can announce streams mid-file; each is opened when its first packet arrives.
            let stream = input.stream(index)
            let created = StreamTracker(stream: stream, input: input, isMainVideo: index == mainVideo)
            trackers[index] = created
            return created
        }
        for index in 0..<input.streamCount { _ = tracker(index) }
        var lastStamp: DVRecordingStamp?

        while true {
            if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while inspecting the raw file") }
            let read = input.read(into: packet)
            if read == AVErrorCode.endOfFile { break }
            if read == AVErrorCode.again { continue }
            if read < 0 {
                if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while inspecting the raw file") }
                let at = mainVideo.flatMap { trackers[$0]?.meter?.duration }.map { " after \(RawInspection.seconds($0)) s of video" } ?? ""
                inspection.readError = "reading stopped\(at): \(LibAV.errorText(read)) (libav error \(read))"
                break
            }
            let track = tracker(Int(packet.pointer.pointee.stream_index))
            track.add(packet: packet.pointer)
            if track.isDV, dvFrameIsDamaged(packet.pointer) { inspection.damagedDVFrames += 1 }
            if track.isDV, track.isMainVideo { noteRecording(packet.pointer, timeBase: track.timeBase, in: &inspection, last: &lastStamp) }
            try track.decode(packet.pointer, into: frame, aspectChanges: &inspection.aspectChanges)
            packet.unref()
        }
        for index in trackers.keys.sorted() {
            try trackers[index]!.decode(nil, into: frame, aspectChanges: &inspection.aspectChanges)
        }
        inspection.streams = trackers.keys.sorted().map { trackers[$0]!.result }
        if let mainVideo { inspection.widestDisplayAspect = trackers[mainVideo]?.widestDisplayAspect }
        if let mainVideo, let decoded = trackers[mainVideo]?.meter?.duration {
            inspection.truncation = truncation(of: input.stream(mainVideo), in: input, decodedVideo: decoded)
        }
        inspection.elapsed = ContinuousClock.now - started
        return inspection
    }

    /// The stream a transcode encodes: libav's best video stream unless it is cover art, else the first video
    /// stream that is not.
    static func mainVideoIndex(of input: InputFile) -> Int? {
        let best = av_find_best_stream(input.context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        if best >= 0, input.stream(Int(best)).pointee.disposition & clibav_disposition_attached_pic() == 0 {
            return Int(best)
        }
        return (0..<input.streamCount).first {
            let stream = input.stream($0)
            return stream.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
                && stream.pointee.disposition & clibav_disposition_attached_pic() == 0
        }
    }

    /// A video that ends before its header says it should (a truncated copy or capture): the decoded span is
    /// shorter than the header's frame count at its frame rate (AVI, MOV), or than a duration that was not guessed
    /// from the bit rate. Spans rather than frame counts, because AVI counts dropped frames too.
    static func truncation(of stream: UnsafeMutablePointer<AVStream>, in input: InputFile, decodedVideo: Double) -> String? {
        let stream = stream.pointee
        var declared: Double?
        if stream.nb_frames > 0, stream.avg_frame_rate.isValid {
            declared = Double(stream.nb_frames) / stream.avg_frame_rate.doubleValue
        } else if av_fmt_ctx_get_duration_estimation_method(input.context) != AVFMT_DURATION_FROM_BITRATE {
            declared = stream.duration != noPTS && stream.duration > 0 ? Double(stream.duration) * stream.time_base.doubleValue : input.duration
        }
        guard let declared, declared - decodedVideo > max(0.5, declared * 0.05) else { return nil }
        return "the video ends at \(RawInspection.seconds(decodedVideo)) s but the file declares \(RawInspection.seconds(declared)) s (truncated?)"
    }

    /// A DV frame is 10 (525/60) or 12 (625/50) DIF sequences of 150 blocks of 80 bytes, per channel: one header,
    /// two subcode, three VAUX blocks, then nine times one audio and fifteen video blocks. The decoder does not
    /// check that layout, so garbage decodes to a silently wrong picture; nor does it read the status (STA) nibble
    /// a camcorder or deck sets on macroblocks it had to conceal (tape dropouts). Both are checked here.
    /// A DV frame's recording stamp: a stamp that does not run on from the previous frame's starts a recording.
    static func noteRecording(_ packet: UnsafeMutablePointer<AVPacket>, timeBase: AVRational, in inspection: inout RawInspection, last: inout DVRecordingStamp?) {
        guard let data = packet.pointee.data,
              let stamp = DVRecordingStamp.read(frame: UnsafeRawBufferPointer(start: data, count: Int(packet.pointee.size))) else { return }
        defer { last = stamp }
        if let last, last.isContinued(by: stamp) { return }
        let pts = packet.pointee.pts == noPTS ? 0 : packet.pointee.pts
        inspection.recordings.append(RawInspection.Recording(start: Double(pts) * timeBase.doubleValue, recordedAt: stamp))
    }

    static func dvFrameIsDamaged(_ packet: UnsafeMutablePointer<AVPacket>) -> Bool {
        let size = Int(packet.pointee.size)
        let sequenceBytes = 150 * 80
        guard let data = packet.pointee.data, size > 0, size % sequenceBytes == 0 else { return true }
        for block in 0..<(size / 80) {
            let position = block % 150
            let expected: UInt8 =
                switch position {
                case 0: 0
                case 1...2: 1
                case 3...5: 2
                default: (position - 6) % 16 == 0 ? 3 : 4
                }
            let header = data[block * 80]
            if header >> 5 != expected { return true }
            if expected == 4, data[block * 80 + 3] >> 4 != 0 { return true }
        }
        return false
    }
}

extension RawInspection {
    static func seconds(_ value: Double) -> String { String((value * 100).rounded() / 100) }
}

/// One stream during `inspectRaw`: packet statistics and discontinuities for every stream, a decoder for the main
/// video and each audio stream.
private final class StreamTracker {
    var result: RawInspection.Stream
    let timeBase: AVRational
    let isDV: Bool
    let isMainVideo: Bool
    let checksJumps: Bool
    var decoder: CodecContext?
    var meter: StreamMeter?
    /// The highest timestamp since the start or the last restart or jump.
    var highestTimestamp: Double?
    var aspect: (display: Rational, frames: Int)?
    var widestDisplayAspect: Rational?

    init(stream: UnsafeMutablePointer<AVStream>, input: InputFile, isMainVideo: Bool) {
        let info = MediaProbe.streamInfo(stream, in: input)
        result = RawInspection.Stream(index: info.index, kind: info.kind, codec: info.codec)
        timeBase = stream.pointee.time_base
        let codecID = stream.pointee.codecpar.pointee.codec_id
        self.isMainVideo = isMainVideo
        isDV = isMainVideo && codecID == AV_CODEC_ID_DVVIDEO
        checksJumps = info.kind == .video || info.kind == .audio
        guard isMainVideo || info.kind == .audio else { return }
        // A stream with no decoder in this build is measured by its packets; the verdict then finds it has no
        // counterpart in the output (the transcoder drops it).
        if let decoder = try? openDecoder(for: stream, in: input, options: [("err_detect", "crccheck")]) {
            self.decoder = decoder
            meter = StreamMeter(stream: stream, input: input)
        }
    }

    func add(packet: UnsafeMutablePointer<AVPacket>) {
        result.packets += 1
        if packet.pointee.flags & clibav_pkt_flag_corrupt() != 0 { result.corruptPackets += 1 }
        let raw = packet.pointee.dts != noPTS ? packet.pointee.dts : packet.pointee.pts
        guard raw != noPTS else { return }
        let time = Double(raw) * timeBase.doubleValue
        let end = time + Double(max(packet.pointee.duration, 0)) * timeBase.doubleValue
        if let highest = highestTimestamp {
            if time < highest - MediaProbe.timestampRestartLimit {
                result.restarts.append("back from \(RawInspection.seconds(highest)) s to \(RawInspection.seconds(time)) s at packet \(result.packets)")
                highestTimestamp = time
            } else if checksJumps, time - highest > MediaProbe.timestampJumpLimit {
                result.jumps.append("forward from \(RawInspection.seconds(highest)) s to \(RawInspection.seconds(time)) s at packet \(result.packets)")
                highestTimestamp = time
            } else {
                highestTimestamp = max(highest, time)
            }
        } else {
            highestTimestamp = time
        }
        result.firstTimestamp = min(result.firstTimestamp ?? time, time)
        result.endTimestamp = max(result.endTimestamp ?? end, end)
    }

    /// Sends a packet (nil: flush) and takes every frame out, counting errors and aspect changes.
    func decode(_ packet: UnsafeMutablePointer<AVPacket>?, into frame: Frame, aspectChanges: inout [String]) throws(MediaError) {
        guard let decoder else { return }
        let sent = avcodec_send_packet(decoder.pointer, packet)
        if sent < 0 && sent != AVErrorCode.again && sent != AVErrorCode.endOfFile { result.decodeErrors += 1 }
        while true {
            let received = avcodec_receive_frame(decoder.pointer, frame.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { break }
            if received < 0 {
                result.decodeErrors += 1
                break
            }
            if frame.pointer.pointee.decode_error_flags != 0 || frame.pointer.pointee.flags & clibav_frame_flag_corrupt() != 0 {
                result.decodeErrors += 1
            }
            if isMainVideo { noteAspect(frame.pointer, decoder: decoder, changes: &aspectChanges) }
            meter?.add(frame.pointer)
            frame.unref()
        }
        if let meter {
            result.decodedDuration = meter.duration
            result.decodedFrames = meter.decodedCount
            result.frameDuration = meter.frameDuration
        }
    }

    /// The frame's own sample aspect ratio (DV and MPEG-2 carry it per frame or sequence; the stream's is whatever
    /// the demuxer saw last), as a display aspect ratio.
    private func noteAspect(_ frame: UnsafeMutablePointer<AVFrame>, decoder: CodecContext, changes: inout [String]) {
        var sar = frame.pointee.sample_aspect_ratio
        if !sar.isValid { sar = decoder.pointer.pointee.sample_aspect_ratio }
        if !sar.isValid { sar = AVRational(num: 1, den: 1) }
        let display = MediaProbe.displayAspect(width: frame.pointee.width, height: frame.pointee.height, sar: sar)
        let count = (meter?.count ?? 0) + 1
        if let previous = aspect, previous.display != display {
            let at = meter?.duration.map { " at \(RawInspection.seconds($0)) s" } ?? ""
            changes.append("\(previous.display) to \(display)\(at) (frame \(count))")
        }
        aspect = (display, count)
        if display.isValid, display.value > (widestDisplayAspect?.value ?? 0) { widestDisplayAspect = display }
    }
}
