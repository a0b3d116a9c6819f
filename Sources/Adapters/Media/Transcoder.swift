import CLibAV

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Transcodes raw home video into a compact file: demux → decode → filter → encode → mux, in the shape of
/// ffmpeg's `doc/examples/transcode.c`, with what the ffmpeg CLI adds on top (filter graphs configured from the
/// first decoded frame, the header written once every encoder is open, decoder and encoder threads left to
/// libav).
public enum Transcoder {
    /// Transcodes `input` into `output` (overwritten). Blocking: call it on a thread of its own, never on an event
    /// loop or the cooperative pool.
    ///
    /// - The main video stream is deinterlaced with bwdif when the stream (or, when the stream does not say, its
    ///   first frame) is interlaced; progressive video is only converted to the profile's 4:2:0 pixel format.
    /// - The display aspect ratio is kept (the sample aspect ratio is set on the encoder and the output stream).
    /// - Every audio stream is kept, with its channel layout and sample rate when the encoder supports them.
    /// - Global metadata (creation_time, ...) and chapters are copied; `metadata` is added on top (for example
    ///   "original_filename" and "source_label").
    /// - Damaged input (broken packets, concealed frames, read errors, a file shorter than its header says) gives a
    ///   best-effort result with `damage` listed; an input with no decodable video throws.
    /// - `timeLimit` stops a runaway job with `MediaError.Kind.timeLimitExceeded`.
    ///
    /// On any error the partial output file is removed.
    public static func transcode(
        input: String, output: String, profile: TranscodeProfile = .h265, metadata: [String: String] = [:],
        timeLimit: Duration? = nil
    ) throws(MediaError) -> TranscodeReport {
        let started = ContinuousClock.now
        if input == output {
            throw MediaError(.output, "\(fileName(output)): the output path is the input path")
        }
        do {
            let job = try TranscodeJob(inputPath: input, outputPath: output, profile: profile, metadata: metadata, timeLimit: timeLimit)
            var report = try job.run()
            report.elapsed = ContinuousClock.now - started
            return report
        } catch {
            unlink(output)
            throw error
        }
    }
}

extension Transcoder {
    /// A generous per-job time limit for a source, proportional to its length and pixel rate: 10 minutes plus
    /// 4× real time for standard definition (the default profile runs at about real time for SD DV on 2 cores),
    /// scaled up by the pixel rate for HD. Meant to stop runaway jobs, not to be tight.
    public static func suggestedTimeLimit(for source: MediaInfo, profile: TranscodeProfile = .h265) -> Duration {
        let duration = source.video?.bestDuration ?? source.duration ?? 3600
        let width = Double(source.video?.width ?? 720)
        let height = Double(source.video?.height ?? 576)
        let rate = source.video?.frameRate?.value ?? 30
        let standardDefinition = 720.0 * 480.0 * 30000.0 / 1001.0
        let load = max(1, width * height * max(rate, 1) / standardDefinition)
        let slowdown = profile.name == "av1" ? 2.0 : 1.0
        return .seconds(600 + Int((duration * 4 * load * slowdown).rounded(.up)))
    }
}

/// One selected input stream and everything downstream of it.
private final class Track {
    let inputIndex: Int
    let stream: UnsafeMutablePointer<AVStream>
    let decoder: CodecContext
    let isVideo: Bool
    let outputStream: UnsafeMutablePointer<AVStream>
    /// Subtracted from every timestamp (the input's start time in this stream's time base), so the output starts at 0.
    let ptsOffset: Int64
    var meter: StreamMeter

    var graph: FilterGraph?
    var encoder: CodecContext?
    var fifo: AudioFifo?
    /// Encoder frame size for audio (0: any size).
    var audioFrameSize: Int32 = 0
    var nextAudioPTS: Int64?
    var lastInputPTS: Int64?
    var lastEncodedPTS: Int64?
    var oneFrame: Int64 = 1
    var framesEncoded = 0
    var firstOutputPTS: Int64?
    var lastOutputEnd: Int64?

    // What the current graph was configured for, to notice mid-stream changes.
    var videoInput: VideoParameters?
    var audioInput: AudioParameters?
    // Fixed once the encoder is open.
    var fieldOrder: FieldOrder = .unknown
    var deinterlace = false
    var filterChain = ""
    var encoderPixelFormat: Int32 = -1
    var encoderSampleRate: Int32 = 0
    var encoderLayoutName = ""
    var encoderSampleFormat: Int32 = -1

    init(inputIndex: Int, stream: UnsafeMutablePointer<AVStream>, decoder: CodecContext, outputStream: UnsafeMutablePointer<AVStream>, input: InputFile) {
        self.inputIndex = inputIndex
        self.stream = stream
        self.decoder = decoder
        self.isVideo = stream.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
        self.outputStream = outputStream
        self.ptsOffset = input.context.pointee.start_time == noPTS ? 0 : av_rescale_q(input.context.pointee.start_time, timeBaseQ, stream.pointee.time_base)
        self.meter = StreamMeter(stream: stream, input: input)
    }
}

struct VideoParameters: Equatable {
    var width: Int32
    var height: Int32
    var format: Int32
    var sampleAspectRatio: AVRational

    static func == (a: VideoParameters, b: VideoParameters) -> Bool {
        a.width == b.width && a.height == b.height && a.format == b.format
            && av_cmp_q(a.sampleAspectRatio, b.sampleAspectRatio) == 0
    }
}

struct AudioParameters: Equatable {
    var format: Int32
    var sampleRate: Int32
    var layoutName: String
    var channels: Int32
}

/// A packet an encoder produced before the header could be written (not every encoder was open yet).
private struct QueuedPacket {
    let track: Track
    let packet: Packet
}

private final class TranscodeJob {
    let inputPath: String
    let outputPath: String
    let profile: TranscodeProfile
    let metadata: [String: String]
    let deadline: Deadline
    let inputSize: Int64
    let input: InputFile
    var output: OutputFile!
    var container: TranscodeProfile.Container
    var tracks: [Track] = []
    var tracksByIndex: [Int: Track] = [:]
    var videoTrack: Track!
    let videoCodec: UnsafePointer<AVCodec>
    let audioCodec: UnsafePointer<AVCodec>

    var queue: [QueuedPacket] = []
    var queuedBytes = 0
    static let queueLimitBytes = 64 << 20

    // Damage and notes.
    var corruptPackets = 0
    var undecodablePackets = 0
    var lastDecodeError: Int32 = 0
    var concealedFrames = 0
    var readFailure: String?
    var notes: [String] = []

    let packet: Packet
    let decoded: Frame
    let filtered: Frame
    let audioChunk: Frame
    let encoded: Packet

    init(inputPath: String, outputPath: String, profile: TranscodeProfile, metadata: [String: String], timeLimit: Duration?) throws(MediaError) {
        self.inputPath = inputPath
        self.outputPath = outputPath
        self.profile = profile
        self.metadata = metadata
        self.deadline = Deadline(timeLimit)
        self.inputSize = try MediaProbe.fileSize(inputPath)
        guard let videoCodec = avcodec_find_encoder_by_name(profile.videoEncoder) else {
            throw MediaError(.unsupported, "this libav build has no \(profile.videoEncoder) encoder (profile \(profile.name))")
        }
        guard let audioCodec = avcodec_find_encoder_by_name(profile.audioEncoder) else {
            throw MediaError(.unsupported, "this libav build has no \(profile.audioEncoder) encoder (profile \(profile.name))")
        }
        self.videoCodec = videoCodec
        self.audioCodec = audioCodec
        self.container = profile.container
        self.input = try InputFile(path: inputPath, deadline: deadline)
        packet = try Packet()
        decoded = try Frame()
        filtered = try Frame()
        audioChunk = try Frame()
        encoded = try Packet()
    }

    // MARK: Setup

    func run() throws(MediaError) -> TranscodeReport {
        try selectStreams()
        try transcodeAll()
        return try finish()
    }

    private func selectStreams() throws(MediaError) {
        guard let videoIndex = MediaProbe.mainVideoIndex(of: input) else {
            let found = (0..<input.streamCount).map { codecName(input.stream($0).pointee.codecpar.pointee.codec_id) }
            throw MediaError(.notVideo, "\(fileName(inputPath)) has no video stream" + (found.isEmpty ? "" : " (streams: \(found.joined(separator: ", ")))"))
        }
        var audioIndices: [Int] = []
        for index in 0..<input.streamCount {
            let parameters = input.stream(index).pointee.codecpar.pointee
            switch parameters.codec_type {
            case AVMEDIA_TYPE_AUDIO:
                if avcodec_find_decoder(parameters.codec_id) == nil {
                    notes.append("audio stream \(index) (\(codecName(parameters.codec_id))) has no decoder in this libav build and was dropped")
                } else if parameters.sample_rate <= 0 || parameters.ch_layout.nb_channels <= 0 {
                    notes.append("audio stream \(index) (\(codecName(parameters.codec_id))) has no sample rate or channels and was dropped")
                } else {
                    audioIndices.append(index)
                }
            case AVMEDIA_TYPE_VIDEO where index != videoIndex:
                notes.append("extra video stream \(index) (\(codecName(parameters.codec_id))) was dropped")
            case AVMEDIA_TYPE_SUBTITLE:
                notes.append("subtitle stream \(index) (\(codecName(parameters.codec_id))) was dropped")
            default:
                break
            }
        }

        // MP4 for the profile unless it cannot hold one of the encoders' codecs.
        if let format = av_guess_format(container.muxerName, nil, nil) {
            let holdsVideo = avformat_query_codec(format, videoCodec.pointee.id, FF_COMPLIANCE_NORMAL) == 1
            let holdsAudio = audioIndices.isEmpty || avformat_query_codec(format, audioCodec.pointee.id, FF_COMPLIANCE_NORMAL) == 1
            if !(holdsVideo && holdsAudio), container != profile.fallbackContainer {
                notes.append("\(container.rawValue) cannot hold \(holdsVideo ? profile.audioEncoder : profile.videoEncoder); wrote \(profile.fallbackContainer.rawValue)")
                container = profile.fallbackContainer
            }
        }
        output = try OutputFile(path: outputPath, formatName: container.muxerName, deadline: deadline)

        for index in [videoIndex] + audioIndices {
            let stream = input.stream(index)
            let decoder: CodecContext
            do {
                decoder = try openDecoder(for: stream, in: input)
            } catch {
                if index == videoIndex { throw error }
                notes.append("audio stream \(index) was dropped: \(error.message)")
                continue
            }
            let outputStream = try output.addStream()
            for (key, value) in entries(of: stream.pointee.metadata) where Self.keepsStreamMetadata(key) {
                av_dict_set(&outputStream.pointee.metadata, key, value, 0)
            }
            outputStream.pointee.disposition = stream.pointee.disposition & Int32(AV_DISPOSITION_DEFAULT)
            let track = Track(inputIndex: index, stream: stream, decoder: decoder, outputStream: outputStream, input: input)
            tracks.append(track)
            tracksByIndex[index] = track
            if index == videoIndex { videoTrack = track }
        }
        copyMetadataAndChapters()
    }

    /// Container statistics (Matroska's DURATION, BPS, ...) and encoder tags describe the old file; the rest is kept.
    private static func keepsStreamMetadata(_ key: String) -> Bool {
        let upper = key.uppercased()
        return !(upper == "ENCODER" || upper == "DURATION" || upper == "BPS" || upper.hasPrefix("NUMBER_OF_")
            || upper.hasPrefix("_STATISTICS_") || upper == "HANDLER_NAME" || upper == "VENDOR_ID")
    }

    private func copyMetadataAndChapters() {
        let context = output.context
        let dropped: Set<String> = ["encoder", "major_brand", "minor_version", "compatible_brands"]
        for (key, value) in input.metadata where !dropped.contains(key.lowercased()) {
            av_dict_set(&context.pointee.metadata, key, value, 0)
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            av_dict_set(&context.pointee.metadata, key, value, 0)
        }
        let count = input.chapterCount
        guard count > 0, let storage = av_calloc(count, MemoryLayout<UnsafeMutablePointer<AVChapter>?>.stride) else { return }
        let chapters = storage.assumingMemoryBound(to: UnsafeMutablePointer<AVChapter>?.self)
        context.pointee.chapters = chapters
        context.pointee.nb_chapters = 0
        for index in 0..<count {
            let source = input.chapter(index)
            guard let raw = av_mallocz(MemoryLayout<AVChapter>.size) else { break }
            let chapter = raw.assumingMemoryBound(to: AVChapter.self)
            let offset = av_rescale_q(input.startTime, timeBaseQ, source.pointee.time_base)
            chapter.pointee.id = source.pointee.id
            chapter.pointee.time_base = source.pointee.time_base
            chapter.pointee.start = max(0, source.pointee.start - offset)
            chapter.pointee.end = max(chapter.pointee.start, source.pointee.end - offset)
            av_dict_copy(&chapter.pointee.metadata, source.pointee.metadata, 0)
            chapters[index] = chapter
            context.pointee.nb_chapters = UInt32(index + 1)
        }
    }

    // MARK: The loop

    private func checkDeadline(_ during: String) throws(MediaError) {
        if deadline.expired {
            throw MediaError(.timeLimitExceeded, "\(fileName(inputPath)): time limit reached while \(during) (\(videoTrack.framesEncoded) frames done)")
        }
    }

    private func transcodeAll() throws(MediaError) {
        while true {
            try checkDeadline("transcoding")
            let read = input.read(into: packet)
            if read == AVErrorCode.endOfFile { break }
            if read == AVErrorCode.again { continue }
            if read < 0 {
                try checkDeadline("reading")
                let at = videoTrack.meter.duration.map { " after \(Int($0)) s" } ?? ""
                readFailure = "reading stopped\(at): \(LibAV.errorText(read)); the rest of the input was skipped"
                break
            }
            guard let track = tracksByIndex[Int(packet.pointer.pointee.stream_index)] else {
                packet.unref()
                continue
            }
            if packet.pointer.pointee.flags & clibav_pkt_flag_corrupt() != 0 { corruptPackets += 1 }
            try decode(track, packet.pointer)
            packet.unref()
        }
        // End of input: drain decoders, make sure every encoder is open, then drain filters and encoders.
        for track in tracks { try decode(track, nil) }
        for track in tracks where track.encoder == nil {
            if track.isVideo {
                throw MediaError(.notVideo, "\(fileName(inputPath)): no video frame could be decoded" + (undecodablePackets > 0 ? " (\(undecodablePackets) broken packets: \(LibAV.errorText(lastDecodeError)))" : ""))
            }
            notes.append("audio stream \(track.inputIndex) had no decodable audio; its output stream is empty")
            try configureAudio(track, parameters: decoderAudioParameters(track))
        }
        try writeHeaderIfReady()
        for track in tracks {
            try checkDeadline("finishing")
            if let graph = track.graph {
                try graph.send(nil)
                try drainGraph(track)
            }
            if !track.isVideo { try encodeBufferedAudio(track, final: true) }
            try encode(track, nil)
        }
        try output.writeTrailer()
    }

    /// Sends a packet (nil: end of stream) to the track's decoder and handles every frame that comes out.
    private func decode(_ track: Track, _ packet: UnsafeMutablePointer<AVPacket>?) throws(MediaError) {
        var sent = avcodec_send_packet(track.decoder.pointer, packet)
        if sent == AVErrorCode.again {
            // The decoder wants its frames taken first (cannot happen when every send is drained, but cheap).
            try receiveFrames(track)
            sent = avcodec_send_packet(track.decoder.pointer, packet)
        }
        if sent < 0 && sent != AVErrorCode.endOfFile {
            // A broken packet: skip it (the decoder conceals what it can) and report the damage.
            undecodablePackets += 1
            lastDecodeError = sent
        }
        try receiveFrames(track)
    }

    private func receiveFrames(_ track: Track) throws(MediaError) {
        while true {
            let received = avcodec_receive_frame(track.decoder.pointer, decoded.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            if received < 0 {
                undecodablePackets += 1
                lastDecodeError = received
                return
            }
            if decoded.pointer.pointee.decode_error_flags != 0 || decoded.pointer.pointee.flags & clibav_frame_flag_corrupt() != 0 {
                concealedFrames += 1
            }
            track.meter.add(decoded.pointer)
            try handleDecoded(track, decoded.pointer)
            decoded.unref()
        }
    }

    private func handleDecoded(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // Timestamps: best effort, never missing, relative to the input's start.
        var pts = frame.pointee.best_effort_timestamp
        if pts == noPTS {
            if let last = track.lastInputPTS {
                let step = track.isVideo
                    ? track.meter.defaultFrameDuration
                    : av_rescale_q(Int64(frame.pointee.nb_samples), AVRational(num: 1, den: max(1, frame.pointee.sample_rate)), track.stream.pointee.time_base)
                pts = last + step
            } else {
                pts = track.ptsOffset
            }
        }
        track.lastInputPTS = pts
        frame.pointee.pts = pts - track.ptsOffset

        if track.isVideo {
            let sar = av_guess_sample_aspect_ratio(input.context, track.stream, frame)
            frame.pointee.sample_aspect_ratio = sar.isValid ? sar : AVRational(num: 1, den: 1)
            let parameters = VideoParameters(width: frame.pointee.width, height: frame.pointee.height, format: frame.pointee.format, sampleAspectRatio: frame.pointee.sample_aspect_ratio)
            if track.encoder == nil {
                try configureVideo(track, parameters: parameters, firstFrame: frame)
            } else if parameters != track.videoInput {
                try rebuildVideoGraph(track, parameters: parameters)
            }
        } else {
            try normaliseLayout(frame)
            // Audio goes through the graph in 1/sample_rate, as the ffmpeg CLI does.
            frame.pointee.pts = av_rescale_q(frame.pointee.pts, track.stream.pointee.time_base, AVRational(num: 1, den: frame.pointee.sample_rate))
            let parameters = AudioParameters(format: frame.pointee.format, sampleRate: frame.pointee.sample_rate, layoutName: layoutName(&frame.pointee.ch_layout), channels: frame.pointee.ch_layout.nb_channels)
            if track.encoder == nil {
                try configureAudio(track, parameters: parameters)
            } else if parameters != track.audioInput {
                try rebuildAudioGraph(track, parameters: parameters)
            }
        }
        try track.graph!.send(frame)
        try drainGraph(track)
    }

    private func drainGraph(_ track: Track) throws(MediaError) {
        guard let graph = track.graph else { return }
        while true {
            let received = graph.receive(into: filtered.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            try check(received, .processing, "\(fileName(inputPath)): filtering failed (\(graph.description))")
            if track.isVideo {
                try encodeVideo(track, filtered.pointer, from: graph.outputTimeBase)
            } else {
                try bufferAudio(track, filtered.pointer, from: graph.outputTimeBase)
            }
            filtered.unref()
        }
    }

    // MARK: Video

    private func configureVideo(_ track: Track, parameters: VideoParameters, firstFrame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // Field order: the stream's when it says; otherwise the first frame's flags.
        var order = FieldOrder(track.stream.pointee.codecpar.pointee.field_order)
        if order == .unknown {
            order = firstFrame.pointee.interlaced_frame != 0 ? (firstFrame.pointee.top_field_first != 0 ? .topFieldFirst : .bottomFieldFirst) : .progressive
        }
        track.fieldOrder = order
        track.deinterlace = order.isInterlaced

        // The first pixel format of the profile the encoder accepts: always 4:2:0, so 4:1:1 DV and 4:2:2 sources
        // are converted here rather than by the encoder's choice.
        let supported = Self.list(videoCodec.pointee.pix_fmts, end: AV_PIX_FMT_NONE).map(\.rawValue)
        let wanted = profile.pixelFormats.map { av_get_pix_fmt($0).rawValue }.filter { $0 >= 0 }
        guard let pixelFormat = wanted.first(where: { supported.isEmpty || supported.contains($0) }) else {
            throw MediaError(.invalidProfile, "\(profile.videoEncoder) supports none of the profile's pixel formats \(profile.pixelFormats.joined(separator: ", "))")
        }
        track.encoderPixelFormat = pixelFormat
        var chain: [String] = []
        if track.deinterlace {
            chain.append(bwdifFilter(track))
        }
        chain.append("format=\(pixelFormatName(pixelFormat))")
        track.filterChain = chain.joined(separator: ",")
        let graph = try makeVideoGraph(track, parameters: parameters, chain: track.filterChain)
        track.graph = graph
        track.videoInput = parameters

        let encoder = try CodecContext(codec: videoCodec)
        let context = encoder.pointer
        context.pointee.width = graph.outputWidth
        context.pointee.height = graph.outputHeight
        context.pointee.pix_fmt = AVPixelFormat(rawValue: graph.outputFormat)
        let sar = graph.outputSampleAspectRatio
        context.pointee.sample_aspect_ratio = sar.isValid ? sar : AVRational(num: 1, den: 1)
        context.pointee.time_base = graph.outputTimeBase
        var rate = graph.outputFrameRate
        if !rate.isValid { rate = av_guess_frame_rate(input.context, track.stream, nil) }
        if !rate.isValid {
            rate = AVRational(num: 25, den: 1)
            notes.append("the video has no frame rate; 25 fps was assumed for rate control")
        }
        context.pointee.framerate = rate
        context.pointee.field_order = AV_FIELD_PROGRESSIVE
        context.pointee.color_range = firstFrame.pointee.color_range
        context.pointee.colorspace = firstFrame.pointee.colorspace
        context.pointee.color_primaries = firstFrame.pointee.color_primaries
        context.pointee.color_trc = firstFrame.pointee.color_trc
        context.pointee.thread_count = 0
        if output.wantsGlobalHeader { context.pointee.flags |= clibav_codec_flag_global_header() }
        var options: [(String, String)] = [("crf", String(profile.crf)), ("preset", profile.preset)]
        options += profile.videoOptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let unused = try encoder.open(options: options, what: "the \(profile.videoEncoder) encoder")
        if !unused.isEmpty { notes.append("\(profile.videoEncoder) ignored the options \(unused.joined(separator: ", "))") }
        track.encoder = encoder
        track.oneFrame = max(1, av_rescale_q(1, av_inv_q(rate), context.pointee.time_base))

        let stream = track.outputStream
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, context), .output, "cannot describe the video stream")
        stream.pointee.time_base = context.pointee.time_base
        stream.pointee.sample_aspect_ratio = context.pointee.sample_aspect_ratio
        stream.pointee.avg_frame_rate = rate
        stream.pointee.r_frame_rate = rate
        if container == .mp4, let tag = profile.videoCodecTag, tag.utf8.count == 4 {
            let bytes = Array(tag.utf8)
            stream.pointee.codecpar.pointee.codec_tag = clibav_mktag(bytes[0], bytes[1], bytes[2], bytes[3])
        }
        try writeHeaderIfReady()
    }

    /// bwdif at the input's frame rate, fields in the stream's order. Decoders that flag every frame (DV, MPEG-2,
    /// H.264, MJPEG, ...) let bwdif skip frames flagged progressive (film on a DVD); for other codecs (uncompressed
    /// QuickTime captures, whose frames carry no flags) every frame is deinterlaced.
    private func bwdifFilter(_ track: Track) -> String {
        let flagsFrames: Set<UInt32> = [
            AV_CODEC_ID_DVVIDEO.rawValue, AV_CODEC_ID_MPEG2VIDEO.rawValue, AV_CODEC_ID_MPEG1VIDEO.rawValue, AV_CODEC_ID_H264.rawValue,
            AV_CODEC_ID_MJPEG.rawValue, AV_CODEC_ID_HEVC.rawValue, AV_CODEC_ID_VC1.rawValue, AV_CODEC_ID_MPEG4.rawValue,
        ]
        let which = flagsFrames.contains(track.stream.pointee.codecpar.pointee.codec_id.rawValue) ? "interlaced" : "all"
        return "bwdif=mode=send_frame:parity=\(track.fieldOrder == .topFieldFirst ? "tff" : "bff"):deint=\(which)"
    }

    private func makeVideoGraph(_ track: Track, parameters: VideoParameters, chain: String) throws(MediaError) -> FilterGraph {
        let timeBase = track.stream.pointee.time_base
        var arguments = "video_size=\(parameters.width)x\(parameters.height):pix_fmt=\(parameters.format):time_base=\(timeBase.num)/\(timeBase.den):pixel_aspect=\(parameters.sampleAspectRatio.num)/\(parameters.sampleAspectRatio.den)"
        let rate = av_guess_frame_rate(input.context, track.stream, nil)
        if rate.isValid { arguments += ":frame_rate=\(rate.num)/\(rate.den)" }
        return try FilterGraph(isVideo: true, sourceArguments: arguments, filters: chain)
    }

    /// The decoded frames changed size or format mid-stream: flush the old graph into the encoder and build a new
    /// one that scales to what the encoder was opened with.
    private func rebuildVideoGraph(_ track: Track, parameters: VideoParameters) throws(MediaError) {
        if let graph = track.graph {
            try graph.send(nil)
            try drainGraph(track)
        }
        let encoder = track.encoder!.pointer.pointee
        var chain: [String] = []
        if track.deinterlace { chain.append(bwdifFilter(track)) }
        chain.append("scale=\(encoder.width):\(encoder.height)")
        chain.append("setsar=\(encoder.sample_aspect_ratio.num)/\(encoder.sample_aspect_ratio.den)")
        chain.append("format=\(pixelFormatName(track.encoderPixelFormat))")
        track.graph = nil
        track.graph = try makeVideoGraph(track, parameters: parameters, chain: chain.joined(separator: ","))
        track.videoInput = parameters
        notes.append("the video changed to \(parameters.width)x\(parameters.height) \(pixelFormatName(parameters.format)) mid-stream and was scaled to \(encoder.width)x\(encoder.height)")
    }

    private func encodeVideo(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>, from timeBase: AVRational) throws(MediaError) {
        let encoder = track.encoder!.pointer
        var pts = av_rescale_q(frame.pointee.pts, timeBase, encoder.pointee.time_base)
        // The encoder and muxer need strictly increasing timestamps; broken inputs do not always have them.
        if let last = track.lastEncodedPTS, pts <= last { pts = last + 1 }
        track.lastEncodedPTS = pts
        frame.pointee.pts = pts
        frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
        frame.pointee.pkt_duration = track.oneFrame
        track.framesEncoded += 1
        try encode(track, frame)
    }

    // MARK: Audio

    private func normaliseLayout(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        // PCM in AVI and friends has a channel count but no layout: use the default layout for that count, as the
        // ffmpeg CLI does.
        if frame.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            let channels = frame.pointee.ch_layout.nb_channels
            av_channel_layout_uninit(&frame.pointee.ch_layout)
            av_channel_layout_default(&frame.pointee.ch_layout, channels)
        }
    }

    private func layoutName(_ layout: UnsafePointer<AVChannelLayout>) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        if av_channel_layout_describe(layout, &buffer, buffer.count) < 0 { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func decoderAudioParameters(_ track: Track) -> AudioParameters {
        let decoder = track.decoder.pointer.pointee
        var layout = AVChannelLayout()
        defer { av_channel_layout_uninit(&layout) }
        if decoder.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || decoder.ch_layout.nb_channels == 0 {
            av_channel_layout_default(&layout, max(1, decoder.ch_layout.nb_channels))
        } else {
            var source = decoder.ch_layout
            av_channel_layout_copy(&layout, &source)
        }
        var format = decoder.sample_fmt.rawValue
        if format < 0 { format = AV_SAMPLE_FMT_FLTP.rawValue }
        return AudioParameters(format: format, sampleRate: max(8000, decoder.sample_rate), layoutName: layoutName(&layout), channels: layout.nb_channels)
    }

    private func configureAudio(_ track: Track, parameters: AudioParameters) throws(MediaError) {
        // Sample rate: the source's when the encoder takes it, else the nearest it has (Opus: 48 kHz).
        let rates = Self.list(audioCodec.pointee.supported_samplerates, end: 0)
        var rate = parameters.sampleRate
        if !rates.isEmpty, !rates.contains(rate) {
            rate = rates.filter { $0 >= parameters.sampleRate }.min() ?? rates.max()!
            notes.append("audio stream \(track.inputIndex): \(profile.audioEncoder) cannot encode \(parameters.sampleRate) Hz; resampled to \(rate) Hz")
        }
        // Channel layout: the source's when the encoder takes it, else its default layout for the same count,
        // else stereo.
        let source = ChannelLayout()
        av_channel_layout_from_string(&source.value, parameters.layoutName)
        if source.channels != parameters.channels {
            av_channel_layout_uninit(&source.value)
            av_channel_layout_default(&source.value, parameters.channels)
        }
        let target: ChannelLayout
        if let layouts = audioCodec.pointee.ch_layouts {
            var supported: [UnsafePointer<AVChannelLayout>] = []
            var cursor = layouts
            while cursor.pointee.nb_channels != 0 {
                supported.append(cursor)
                cursor += 1
            }
            let sameCount = ChannelLayout(defaultFor: source.channels)
            let stereo = ChannelLayout(defaultFor: 2)
            if supported.contains(where: { av_channel_layout_compare($0, &source.value) == 0 }) {
                target = source
            } else if let match = supported.first(where: { av_channel_layout_compare($0, &sameCount.value) == 0 }) {
                target = try ChannelLayout(copying: match)
            } else if let match = supported.first(where: { $0.pointee.nb_channels == source.channels }) {
                target = try ChannelLayout(copying: match)
            } else {
                target = stereo
                notes.append("audio stream \(track.inputIndex): \(profile.audioEncoder) cannot encode \(source.name); downmixed to stereo")
            }
        } else {
            target = source
        }
        let formats = Self.list(audioCodec.pointee.sample_fmts, end: AV_SAMPLE_FMT_NONE).map(\.rawValue)
        let sampleFormat = formats.first(where: { $0 == AV_SAMPLE_FMT_FLTP.rawValue || $0 == AV_SAMPLE_FMT_FLT.rawValue }) ?? formats.first ?? AV_SAMPLE_FMT_FLTP.rawValue
        track.encoderSampleRate = rate
        track.encoderLayoutName = target.name
        track.encoderSampleFormat = sampleFormat
        track.filterChain = "aformat=sample_fmts=\(sampleFormatName(sampleFormat)):sample_rates=\(rate):channel_layouts=\(target.name)"
        track.graph = try makeAudioGraph(parameters: parameters, chain: track.filterChain)
        track.audioInput = parameters

        let encoder = try CodecContext(codec: audioCodec)
        let context = encoder.pointer
        context.pointee.sample_fmt = AVSampleFormat(rawValue: sampleFormat)
        context.pointee.sample_rate = rate
        try target.copy(to: &context.pointee.ch_layout)
        context.pointee.bit_rate = Int64(profile.audioBitRatePerChannel) * Int64(target.channels)
        context.pointee.time_base = AVRational(num: 1, den: rate)
        context.pointee.thread_count = 0
        if output.wantsGlobalHeader { context.pointee.flags |= clibav_codec_flag_global_header() }
        let unused = try encoder.open(options: [], what: "the \(profile.audioEncoder) encoder (\(rate) Hz, \(target.name))")
        if !unused.isEmpty { notes.append("\(profile.audioEncoder) ignored the options \(unused.joined(separator: ", "))") }
        track.encoder = encoder
        let variable = audioCodec.pointee.capabilities & clibav_codec_cap_variable_frame_size() != 0
        track.audioFrameSize = variable ? 0 : context.pointee.frame_size
        track.fifo = try AudioFifo(format: context.pointee.sample_fmt, channels: target.channels)

        let stream = track.outputStream
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, context), .output, "cannot describe audio stream \(track.inputIndex)")
        stream.pointee.time_base = context.pointee.time_base
        try writeHeaderIfReady()
    }

    private func makeAudioGraph(parameters: AudioParameters, chain: String) throws(MediaError) -> FilterGraph {
        let arguments = "time_base=1/\(parameters.sampleRate):sample_rate=\(parameters.sampleRate):sample_fmt=\(sampleFormatName(parameters.format)):channel_layout=\(parameters.layoutName)"
        return try FilterGraph(isVideo: false, sourceArguments: arguments, filters: chain)
    }

    private func rebuildAudioGraph(_ track: Track, parameters: AudioParameters) throws(MediaError) {
        if let graph = track.graph {
            try graph.send(nil)
            try drainGraph(track)
        }
        track.graph = nil
        track.graph = try makeAudioGraph(parameters: parameters, chain: track.filterChain)
        track.audioInput = parameters
        notes.append("audio stream \(track.inputIndex) changed to \(parameters.sampleRate) Hz \(parameters.layoutName) mid-stream and was resampled")
    }

    /// Filtered audio goes into a FIFO that hands the encoder frames of exactly its frame size (AAC: 1024).
    private func bufferAudio(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>, from timeBase: AVRational) throws(MediaError) {
        if track.nextAudioPTS == nil, frame.pointee.pts != noPTS {
            track.nextAudioPTS = av_rescale_q(frame.pointee.pts, timeBase, track.encoder!.pointer.pointee.time_base)
        }
        try track.fifo!.write(frame)
        try encodeBufferedAudio(track, final: false)
    }

    private func encodeBufferedAudio(_ track: Track, final: Bool) throws(MediaError) {
        guard let fifo = track.fifo, let encoder = track.encoder?.pointer else { return }
        let size = track.audioFrameSize > 0 ? track.audioFrameSize : max(fifo.count, 1)
        while fifo.count >= size || (final && fifo.count > 0) {
            let count = min(size, fifo.count)
            let chunk = audioChunk.pointer
            chunk.pointee.format = encoder.pointee.sample_fmt.rawValue
            chunk.pointee.sample_rate = encoder.pointee.sample_rate
            try check(av_channel_layout_copy(&chunk.pointee.ch_layout, &encoder.pointee.ch_layout), .processing, "cannot copy a channel layout")
            try fifo.read(into: chunk, count: count)
            let pts = track.nextAudioPTS ?? 0
            chunk.pointee.pts = pts
            track.nextAudioPTS = pts + Int64(count)
            track.framesEncoded += 1
            try encode(track, chunk)
            audioChunk.unref()
        }
    }

    // MARK: Encoding and muxing

    /// Sends a frame (nil: flush) to the track's encoder and muxes (or queues) every packet that comes out.
    private func encode(_ track: Track, _ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let encoder = track.encoder!
        var sent = avcodec_send_frame(encoder.pointer, frame)
        if sent == AVErrorCode.again {
            try receivePackets(track)
            sent = avcodec_send_frame(encoder.pointer, frame)
        }
        if sent < 0 && !(frame == nil && sent == AVErrorCode.endOfFile) {
            throw MediaError.libav(.processing, "\(fileName(inputPath)): the \(encoder.codecName) encoder refused a frame", sent)
        }
        try receivePackets(track)
    }

    private func receivePackets(_ track: Track) throws(MediaError) {
        let encoder = track.encoder!
        while true {
            let received = avcodec_receive_packet(encoder.pointer, encoded.pointer)
            if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
            try check(received, .processing, "\(fileName(inputPath)): the \(encoder.codecName) encoder failed")
            let packet = encoded.pointer
            // bwdif marks its frames with a field's duration and encoders pass that on; a constant-rate output's
            // packets last one frame (the muxer needs it for the last sample).
            if track.isVideo { packet.pointee.duration = track.oneFrame }
            if packet.pointee.pts != noPTS {
                track.firstOutputPTS = min(track.firstOutputPTS ?? packet.pointee.pts, packet.pointee.pts)
                let end = packet.pointee.pts + max(packet.pointee.duration, 0)
                track.lastOutputEnd = max(track.lastOutputEnd ?? end, end)
            }
            packet.pointee.stream_index = track.outputStream.pointee.index
            if output.headerWritten {
                try mux(track, packet)
            } else {
                let queued = try Packet()
                av_packet_move_ref(queued.pointer, packet)
                queuedBytes += Int(queued.pointer.pointee.size)
                queue.append(QueuedPacket(track: track, packet: queued))
                if queuedBytes > Self.queueLimitBytes { try openLaggingEncoders() }
            }
        }
    }

    private func mux(_ track: Track, _ packet: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        av_packet_rescale_ts(packet, track.encoder!.pointer.pointee.time_base, track.outputStream.pointee.time_base)
        try output.write(packet)
    }

    /// The header needs every encoder open (their extradata goes into it). Until then packets wait in `queue`.
    private func writeHeaderIfReady() throws(MediaError) {
        guard !output.headerWritten, tracks.allSatisfy({ $0.encoder != nil }) else { return }
        let options = OptionDictionary()
        if container == .mp4 {
            // moov first so players and the verifier can start without reading to the end; keys of `metadata`
            // (original_filename, source_label) as mdta tags, which MP4's fixed tag list would drop.
            options.set("movflags", "+faststart+use_metadata_tags")
        }
        try output.writeHeader(options: options)
        let waiting = queue
        queue = []
        queuedBytes = 0
        for entry in waiting {
            try mux(entry.track, entry.packet.pointer)
        }
    }

    /// Too much waits for a stream that has produced no frame yet: open its encoder from the decoder's parameters.
    private func openLaggingEncoders() throws(MediaError) {
        for track in tracks where track.encoder == nil && !track.isVideo {
            try configureAudio(track, parameters: decoderAudioParameters(track))
        }
        if !output.headerWritten {
            throw MediaError(.processing, "\(fileName(inputPath)): more than \(Self.queueLimitBytes >> 20) MiB of output before the video produced a frame")
        }
    }

    // MARK: Report

    private func finish() throws(MediaError) -> TranscodeReport {
        let videoEncoder = videoTrack.encoder!.pointer.pointee
        let outputVideoTimeBase = videoEncoder.time_base
        let outputDuration = Double((videoTrack.lastOutputEnd ?? 0) - (videoTrack.firstOutputPTS ?? 0)) * outputVideoTimeBase.doubleValue
        let sar = videoEncoder.sample_aspect_ratio
        let audioTracks = tracks.filter { !$0.isVideo }
        let audioCodecs = audioTracks.map { codecName($0.encoder!.pointer.pointee.codec_id) }
        var settings: [String: String] = [
            "profile": profile.name,
            "container": container.rawValue,
            "video_encoder": profile.videoEncoder,
            "crf": String(profile.crf),
            "preset": profile.preset,
            "pix_fmt": pixelFormatName(videoTrack.encoderPixelFormat),
            "video_filter": videoTrack.filterChain,
            "frame_rate": "\(videoEncoder.framerate.num)/\(videoEncoder.framerate.den)",
            "audio_encoder": profile.audioEncoder,
        ]
        for (key, value) in profile.videoOptions { settings[key] = value }
        if let tag = profile.videoCodecTag, container == .mp4 { settings["video_tag"] = tag }
        if container == .mp4 { settings["movflags"] = "+faststart+use_metadata_tags" }
        if !audioTracks.isEmpty {
            settings["audio"] = audioTracks.map { track in
                let context = track.encoder!.pointer.pointee
                return "\(track.encoderSampleRate) Hz \(track.encoderLayoutName) \(context.bit_rate / 1000) kb/s"
            }.joined(separator: "; ")
        }

        var damage: [String] = []
        if undecodablePackets > 0 {
            damage.append("\(undecodablePackets) packets could not be decoded and were skipped (\(LibAV.errorText(lastDecodeError)))")
        }
        if corruptPackets > 0 { damage.append("\(corruptPackets) packets were flagged corrupt by the demuxer") }
        if concealedFrames > 0 { damage.append("\(concealedFrames) frames had errors the decoder concealed") }
        if let readFailure { damage.append(readFailure) }
        if let decodedVideo = videoTrack.meter.duration,
            let truncation = MediaProbe.truncation(of: videoTrack.stream, in: input, decodedVideo: decodedVideo) {
            damage.append(truncation)
        }

        var source = MediaProbe.mediaInfo(of: input, size: inputSize)
        for position in source.streams.indices {
            guard let track = tracksByIndex[source.streams[position].index] else { continue }
            source.streams[position].decodedDuration = track.meter.duration
            source.streams[position].decodedFrames = track.meter.decodedCount
            if let frameDuration = track.meter.frameDuration { source.streams[position].frameDuration = frameDuration }
            if track.isVideo { source.streams[position].fieldOrder = track.fieldOrder }
        }

        output.close()
        let outputSize = Self.fileSize(outputPath)
        return TranscodeReport(
            profile: profile, settings: settings, container: container, videoCodec: codecName(videoEncoder.codec_id),
            audioCodecs: audioCodecs, duration: outputDuration, frameCount: videoTrack.framesEncoded,
            width: Int(videoEncoder.width), height: Int(videoEncoder.height), sampleAspectRatio: Rational(sar),
            displayAspectRatio: MediaProbe.displayAspect(width: videoEncoder.width, height: videoEncoder.height, sar: sar),
            deinterlaced: videoTrack.deinterlace, sourceFieldOrder: videoTrack.fieldOrder, audioStreamCount: audioTracks.count,
            inputSize: inputSize, outputSize: outputSize, source: source, damage: damage, notes: notes, elapsed: .zero)
    }

    private static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    private static func list<T: Equatable>(_ pointer: UnsafePointer<T>?, end: T) -> [T] {
        guard var cursor = pointer else { return [] }
        var result: [T] = []
        while cursor.pointee != end {
            result.append(cursor.pointee)
            cursor += 1
        }
        return result
    }
}
