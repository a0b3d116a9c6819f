import CLibAV

/// Reading what a file holds, and checking a transcode's output before the raw copy may go.
public enum MediaProbe {
    /// Streams, durations, aspect ratios, field order and metadata from the file's headers (libav reads a few
    /// packets to fill in what headers lack). Fast; does not decode the whole file.
    public static func probe(path: String, timeLimit: Duration? = .seconds(60)) throws(MediaError) -> MediaInfo {
        let size = try fileSize(path)
        let input = try InputFile(path: path, deadline: Deadline(timeLimit))
        return mediaInfo(of: input, size: size)
    }

    /// Decodes `output` end to end and checks it against a probe of the source: every stream's duration within one
    /// frame of the source's (each stream by its own frame duration), every source audio stream present, no decode
    /// errors. Prefer `verify(output:against: TranscodeReport)`: its durations were measured while decoding the
    /// source, where a probe's may be the container's estimate (MPEG-PS).
    @discardableResult
    public static func verify(output: String, against source: MediaInfo, timeLimit: Duration? = nil) throws(MediaError) -> VerificationReport {
        let decoded = try decodeAll(path: output, timeLimit: timeLimit)
        var checks: [VerificationReport.StreamCheck] = []
        var problems: [String] = []
        if decoded.errors > 0 { problems.append("\(decoded.errors) decode errors") }

        func compare(_ kind: StreamInfo.Kind, _ label: String, _ sourceStream: StreamInfo, _ outputStream: StreamInfo?) {
            guard let outputStream else {
                problems.append("\(label) is missing")
                return
            }
            guard let outputDuration = outputStream.decodedDuration, outputDuration > 0 else {
                problems.append("\(label) has no decodable data")
                return
            }
            guard let sourceDuration = sourceStream.bestDuration else { return }
            let tolerance = max(sourceStream.frameDuration ?? 0, outputStream.frameDuration ?? 0) + 0.002
            var check = VerificationReport.StreamCheck(kind: kind, sourceDuration: sourceDuration, outputDuration: outputDuration, tolerance: tolerance)
            if kind == .audio { check.primingAllowance = StreamInfo.primingAllowance(outputStream) }
            checks.append(check)
            if !check.passed {
                problems.append("\(label) lasts \(format(outputDuration)) s, the source \(format(sourceDuration)) s (tolerance \(format(tolerance)) s)")
            }
        }

        if let sourceVideo = source.video {
            compare(.video, "the video stream", sourceVideo, decoded.info.video)
        }
        let outputAudio = decoded.info.audioStreams
        for (position, sourceAudio) in source.audioStreams.enumerated() {
            compare(.audio, "audio stream \(position + 1) of \(source.audioStreams.count)", sourceAudio, position < outputAudio.count ? outputAudio[position] : nil)
        }
        guard problems.isEmpty else {
            throw MediaError(.verificationFailed, "\(fileName(output)) failed verification: " + problems.joined(separator: "; "))
        }
        return VerificationReport(output: decoded.info, checks: checks, decodeErrors: decoded.errors)
    }

    /// Verifies against the source as the transcode decoded it.
    @discardableResult
    public static func verify(output: String, against report: TranscodeReport, timeLimit: Duration? = nil) throws(MediaError) -> VerificationReport {
        // Streams the transcode dropped (with a note) are not expected in the output.
        var source = report.source
        source.streams = source.streams.filter { $0.decodedDuration != nil }
        return try verify(output: output, against: source, timeLimit: timeLimit)
    }

    /// Decodes every video and audio stream of `path`, measuring each.
    static func decodeAll(path: String, timeLimit: Duration?) throws(MediaError) -> (info: MediaInfo, errors: Int) {
        let size = try fileSize(path)
        let deadline = Deadline(timeLimit)
        let input = try InputFile(path: path, deadline: deadline)
        var info = mediaInfo(of: input, size: size)
        var decoders: [Int: CodecContext] = [:]
        var meters: [Int: StreamMeter] = [:]
        for index in 0..<input.streamCount {
            let stream = input.stream(index)
            let type = stream.pointee.codecpar.pointee.codec_type
            guard type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO else { continue }
            if stream.pointee.disposition & clibav_disposition_attached_pic() != 0 { continue }
            decoders[index] = try openDecoder(for: stream, in: input)
            meters[index] = StreamMeter(stream: stream, input: input)
        }
        var errors = 0
        let packet = try Packet()
        let frame = try Frame()

        func drain(_ index: Int, _ decoder: CodecContext) throws(MediaError) {
            while true {
                let received = avcodec_receive_frame(decoder.pointer, frame.pointer)
                if received == AVErrorCode.again || received == AVErrorCode.endOfFile { return }
                if received < 0 {
                    errors += 1
                    return
                }
                if frame.pointer.pointee.decode_error_flags != 0 || frame.pointer.pointee.flags & clibav_frame_flag_corrupt() != 0 { errors += 1 }
                meters[index]!.add(frame.pointer)
                frame.unref()
            }
        }

        while true {
            if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while verifying") }
            let read = input.read(into: packet)
            if read == AVErrorCode.endOfFile { break }
            if read < 0 {
                if deadline.expired { throw MediaError(.timeLimitExceeded, "\(fileName(path)): time limit reached while verifying") }
                throw MediaError.libav(.verificationFailed, "\(fileName(path)): read error while verifying", read)
            }
            let index = Int(packet.pointer.pointee.stream_index)
            if let decoder = decoders[index] {
                let sent = avcodec_send_packet(decoder.pointer, packet.pointer)
                if sent < 0 && sent != AVErrorCode.again { errors += 1 }
                packet.unref()
                try drain(index, decoder)
            } else {
                packet.unref()
            }
        }
        for (index, decoder) in decoders.sorted(by: { $0.key < $1.key }) {
            avcodec_send_packet(decoder.pointer, nil)
            try drain(index, decoder)
        }
        for position in info.streams.indices {
            let index = info.streams[position].index
            guard let meter = meters[index] else { continue }
            info.streams[position].decodedDuration = meter.duration
            info.streams[position].decodedFrames = meter.decodedCount
            if let frameDuration = meter.frameDuration { info.streams[position].frameDuration = frameDuration }
        }
        return (info, errors)
    }

    static func fileSize(_ path: String) throws(MediaError) -> Int64 {
        // avio can tell the size without Foundation; a missing file is reported by open.
        var context: UnsafeMutablePointer<AVIOContext>? = nil
        let opened = avio_open(&context, path, AVIO_FLAG_READ)
        if opened < 0 { throw MediaError.libav(.unreadable, "cannot open \(fileName(path))", opened) }
        defer { avio_closep(&context) }
        let size = avio_size(context)
        if size == 0 { throw MediaError(.emptyFile, "\(fileName(path)) is empty (0 bytes)") }
        return max(size, 0)
    }

    static func mediaInfo(of input: InputFile, size: Int64) -> MediaInfo {
        var streams: [StreamInfo] = []
        for index in 0..<input.streamCount {
            streams.append(streamInfo(input.stream(index), in: input))
        }
        var chapters: [Chapter] = []
        for index in 0..<input.chapterCount {
            let chapter = input.chapter(index).pointee
            let timeBase = chapter.time_base.doubleValue
            chapters.append(Chapter(
                title: entries(of: chapter.metadata).first { $0.key == "title" }?.value,
                start: Double(chapter.start) * timeBase, end: Double(chapter.end) * timeBase))
        }
        return MediaInfo(
            path: input.path, formatName: input.formatName, duration: input.duration, sizeBytes: size, streams: streams,
            metadata: Dictionary(input.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }),
            chapters: chapters)
    }

    static func streamInfo(_ stream: UnsafeMutablePointer<AVStream>, in input: InputFile) -> StreamInfo {
        let parameters = stream.pointee.codecpar.pointee
        let kind: StreamInfo.Kind
        switch parameters.codec_type {
        case AVMEDIA_TYPE_VIDEO: kind = stream.pointee.disposition & clibav_disposition_attached_pic() != 0 ? .attachment : .video
        case AVMEDIA_TYPE_AUDIO: kind = .audio
        case AVMEDIA_TYPE_SUBTITLE: kind = .subtitle
        case AVMEDIA_TYPE_DATA: kind = .data
        case AVMEDIA_TYPE_ATTACHMENT: kind = .attachment
        default: kind = .other
        }
        let timeBase = stream.pointee.time_base
        var info = StreamInfo(
            index: Int(stream.pointee.index), kind: kind, codec: codecName(parameters.codec_id),
            duration: stream.pointee.duration == noPTS || stream.pointee.duration <= 0 ? input.duration : Double(stream.pointee.duration) * timeBase.doubleValue,
            metadata: Dictionary(entries(of: stream.pointee.metadata).map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }))
        if stream.pointee.nb_frames > 0 { info.declaredFrames = Int(stream.pointee.nb_frames) }
        if kind == .video {
            info.width = Int(parameters.width)
            info.height = Int(parameters.height)
            info.pixelFormat = pixelFormatName(parameters.format)
            let sar = av_guess_sample_aspect_ratio(input.context, stream, nil)
            let sampleAspect = sar.isValid ? sar : AVRational(num: 1, den: 1)
            info.sampleAspectRatio = Rational(sampleAspect)
            info.displayAspectRatio = displayAspect(width: parameters.width, height: parameters.height, sar: sampleAspect)
            let rate = av_guess_frame_rate(input.context, stream, nil)
            if rate.isValid {
                info.frameRate = Rational(rate)
                info.frameDuration = 1 / rate.doubleValue
            }
            info.fieldOrder = FieldOrder(parameters.field_order)
        } else if kind == .audio {
            info.sampleRate = Int(parameters.sample_rate)
            info.channels = Int(parameters.ch_layout.nb_channels)
            var layout = parameters.ch_layout
            var buffer = [CChar](repeating: 0, count: 128)
            if av_channel_layout_describe(&layout, &buffer, buffer.count) >= 0 {
                info.channelLayout = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            if parameters.frame_size > 0, parameters.sample_rate > 0 {
                info.frameDuration = Double(parameters.frame_size) / Double(parameters.sample_rate)
            }
        }
        return info
    }

    static func displayAspect(width: Int32, height: Int32, sar: AVRational) -> Rational {
        var num: Int32 = 0
        var den: Int32 = 0
        av_reduce(&num, &den, Int64(width) * Int64(sar.num), Int64(height) * Int64(sar.den), 1 << 20)
        return Rational(Int(num), Int(den))
    }

    private static func format(_ seconds: Double) -> String {
        let scaled = (seconds * 1000).rounded() / 1000
        return "\(scaled)"
    }
}

/// Opens a decoder for a stream the way the ffmpeg CLI does: parameters from the stream, packet time base,
/// guessed frame rate, thread_count 0 (libavcodec picks). `options` are decoder options ("err_detect", ...).
func openDecoder(for stream: UnsafeMutablePointer<AVStream>, in input: InputFile, options: [(String, String)] = []) throws(MediaError) -> CodecContext {
    let parameters = stream.pointee.codecpar!
    guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
        throw MediaError(.unsupported, "\(fileName(input.path)): no decoder for \(codecName(parameters.pointee.codec_id)) (stream \(stream.pointee.index))")
    }
    let decoder = try CodecContext(codec: codec)
    try check(avcodec_parameters_to_context(decoder.pointer, parameters), .processing, "\(fileName(input.path)): cannot set up the \(decoder.codecName) decoder")
    decoder.pointer.pointee.pkt_timebase = stream.pointee.time_base
    if parameters.pointee.codec_type == AVMEDIA_TYPE_VIDEO {
        decoder.pointer.pointee.framerate = av_guess_frame_rate(input.context, stream, nil)
    }
    decoder.pointer.pointee.thread_count = 0
    _ = try decoder.open(options: options, what: "the \(decoder.codecName) decoder for \(fileName(input.path))")
    return decoder
}

/// Measures a decoded stream: video by its frames' time span, audio by its sample count.
struct StreamMeter {
    let isVideo: Bool
    let timeBase: AVRational
    let defaultFrameDuration: Int64
    private(set) var count = 0
    private var samples: Int64 = 0
    private var sampleRate: Int32 = 0
    private var largestFrameSamples: Int32 = 0
    private var firstPTS: Int64?
    private var lastEnd: Int64?
    private var previousPTS: Int64?
    /// The spans of the recordings before the current one: timestamps that restart or jump (two recordings in one
    /// file) start a new span, and the video lasts as long as all spans together.
    private var earlierSpans: Int64 = 0
    private(set) var segments = 1

    init(stream: UnsafeMutablePointer<AVStream>, input: InputFile) {
        isVideo = stream.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
        timeBase = stream.pointee.time_base
        let rate = isVideo ? av_guess_frame_rate(input.context, stream, nil) : AVRational(num: 0, den: 1)
        defaultFrameDuration = rate.isValid ? max(1, av_rescale_q(1, av_inv_q(rate), timeBase)) : 1
    }

    mutating func add(_ frame: UnsafeMutablePointer<AVFrame>) {
        count += 1
        if isVideo {
            var pts = frame.pointee.best_effort_timestamp
            if pts == noPTS { pts = (previousPTS ?? 0) + defaultFrameDuration }
            if let previous = previousPTS, let first = firstPTS, let end = lastEnd, Discontinuity.between(previous, pts, timeBase: timeBase) {
                earlierSpans += end - first
                firstPTS = nil
                lastEnd = nil
                segments += 1
            }
            previousPTS = pts
            let duration = frame.pointee.pkt_duration > 0 ? frame.pointee.pkt_duration : defaultFrameDuration
            firstPTS = min(firstPTS ?? pts, pts)
            lastEnd = max(lastEnd ?? pts + duration, pts + duration)
        } else {
            samples += Int64(frame.pointee.nb_samples)
            sampleRate = frame.pointee.sample_rate
            largestFrameSamples = max(largestFrameSamples, frame.pointee.nb_samples)
        }
    }

    /// Video frames, or audio samples, decoded.
    var decodedCount: Int { isVideo ? count : Int(samples) }

    /// Seconds, or nil when nothing was decoded.
    var duration: Double? {
        if isVideo {
            guard let firstPTS, let lastEnd else { return nil }
            return Double(earlierSpans + lastEnd - firstPTS) * timeBase.doubleValue
        }
        guard samples > 0, sampleRate > 0 else { return nil }
        return Double(samples) / Double(sampleRate)
    }

    var frameDuration: Double? {
        if isVideo { return Double(defaultFrameDuration) * timeBase.doubleValue }
        guard largestFrameSamples > 0, sampleRate > 0 else { return nil }
        return Double(largestFrameSamples) / Double(sampleRate)
    }
}

/// Timestamps that go back by more than half a second between two frames of a stream: the camera started a new
/// recording and its clock with it (HDV, MPEG-TS, DVD recorders). B-frame reordering stays well below that.
/// Going *forward* by more than `forwardLimit` is ambiguous (the clock jumped, or one stream has a gap while the
/// others go on): it is not treated as a new recording, and the raw inspection keeps such a file raw.
enum Discontinuity {
    static let backLimit = 0.5
    static let forwardLimit = 3.0

    static func between(_ previous: Int64, _ next: Int64, timeBase: AVRational) -> Bool {
        Double(next - previous) * timeBase.doubleValue < -backLimit
    }
}
