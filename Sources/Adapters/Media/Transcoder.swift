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
    ///   `canvasAspect` (the widest aspect of a file whose aspect changes) is the output's: every frame is scaled to
    ///   fit it with its own aspect kept, narrower parts pillarboxed, wider ones letterboxed, none distorted.
    /// - Every audio stream is kept, with its channel layout and sample rate when the encoder supports them.
    /// - Global metadata (creation_time, ...) and chapters are copied; `metadata` is added on top (for example
    ///   "original_filename" and "source_label"). `chapters` (start times in seconds, from a DVD's IFO) are written
    ///   instead when the input has none of its own; `chapterEnd` is where the last of them ends, when the caller
    ///   knows the video's length better than the container's header does (timestamps that restart make the
    ///   header's duration the length of one recording, and chapters past it would be lost).
    /// - Damaged input (broken packets, concealed frames, read errors, a file shorter than its header says) gives a
    ///   best-effort result with `damage` listed; an input with no decodable video throws.
    /// - `timeLimit` stops a runaway job with `MediaError.Kind.timeLimitExceeded`.
    ///
    /// On any error the partial output file is removed.
    public static func transcode(
        input: String, output: String, profile: TranscodeProfile = .h265, metadata: [String: String] = [:],
        chapters: [ChapterMark] = [], chapterEnd: Double? = nil, canvasAspect: Rational? = nil, timeLimit: Duration? = nil
    ) throws(MediaError) -> TranscodeReport {
        let started = ContinuousClock.now
        if input == output {
            throw MediaError(.output, "\(fileName(output)): the output path is the input path")
        }
        do {
            let job = try TranscodeJob(inputPath: input, outputPath: output, profile: profile, metadata: metadata, timeLimit: timeLimit)
            job.chapterMarks = chapters
            job.chapterEnd = chapterEnd
            job.canvasAspect = canvasAspect
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
final class Track {
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
    /// Added to every timestamp after a discontinuity so the stream continues where it left off.
    var segmentShift: Int64 = 0
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

/// A chapter the caller knows of (a DVD's IFO, a DV tape's recordings): where it starts, in seconds from the start
/// of the video, and its title (nil: "Chapter n").
public struct ChapterMark: Sendable, Hashable {
    public var start: Double
    public var title: String?

    public init(start: Double, title: String? = nil) {
        self.start = start
        self.title = title
    }
}

/// A stream copied without decoding (subtitles): its packets only change time base and index.
struct CopiedStream {
    let inputIndex: Int
    let inputTimeBase: AVRational
    let outputStream: UnsafeMutablePointer<AVStream>
    /// The input's start time in this stream's time base, subtracted like the tracks' `ptsOffset`.
    let ptsOffset: Int64
}

/// A packet an encoder produced before the header could be written (not every encoder was open yet).
struct QueuedPacket {
    let track: Track
    let packet: Packet
}

final class TranscodeJob {
    let inputPath: String
    let outputPath: String
    let profile: TranscodeProfile
    let metadata: [String: String]
    /// Chapters for an input without chapters of its own.
    var chapterMarks: [ChapterMark] = []
    /// Where the last of `chapterMarks` ends, in seconds (nil: the input's duration).
    var chapterEnd: Double?
    /// The output's display aspect when it should differ from the first frame's (see `transcode(canvasAspect:)`).
    var canvasAspect: Rational?
    /// Where the video's timestamps restarted or jumped (a new recording), in output seconds: chapters.
    var recordingStarts: [Double] = []
    let deadline: Deadline
    let inputSize: Int64
    let input: InputFile
    var output: OutputFile!
    var container: TranscodeProfile.Container
    var tracks: [Track] = []
    var tracksByIndex: [Int: Track] = [:]
    /// Subtitle streams carried over packet for packet (DVD subpictures, SRT, ASS, PGS), by input index.
    var copiedByIndex: [Int: CopiedStream] = [:]
    var copiedQueue: [(stream: CopiedStream, packet: Packet)] = []
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

    func run() throws(MediaError) -> TranscodeReport {
        try selectStreams()
        try transcodeAll()
        return try finish()
    }
}
