import CLibAV

/// An exact fraction (sample and display aspect ratios, frame rates). Printed as "16:9"-style for aspect ratios
/// and "30000/1001"-style through `fraction`.
public struct Rational: Sendable, Hashable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int

    public init(_ numerator: Int, _ denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
    }

    init(_ value: AVRational) { self.init(Int(value.num), Int(value.den)) }

    public var value: Double { denominator == 0 ? 0 : Double(numerator) / Double(denominator) }
    public var isValid: Bool { numerator > 0 && denominator > 0 }
    /// Reduced to lowest terms.
    public var reduced: Rational {
        guard isValid else { return self }
        var (a, b) = (numerator, denominator)
        while b != 0 { (a, b) = (b, a % b) }
        return Rational(numerator / a, denominator / a)
    }
    public var description: String { "\(numerator):\(denominator)" }
    public var fraction: String { "\(numerator)/\(denominator)" }
}

/// How a video stream's frames are scanned.
public enum FieldOrder: String, Sendable, Hashable {
    case progressive
    /// Interlaced, top field displayed first.
    case topFieldFirst = "tff"
    /// Interlaced, bottom field displayed first (DV).
    case bottomFieldFirst = "bff"
    case unknown

    public var isInterlaced: Bool { self == .topFieldFirst || self == .bottomFieldFirst }

    init(_ order: AVFieldOrder) {
        switch order {
        case AV_FIELD_PROGRESSIVE: self = .progressive
        // The second letter is the field displayed first (TB: top coded first, bottom displayed first).
        case AV_FIELD_TT, AV_FIELD_BT: self = .topFieldFirst
        case AV_FIELD_BB, AV_FIELD_TB: self = .bottomFieldFirst
        default: self = .unknown
        }
    }
}

public struct StreamInfo: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case video, audio, subtitle, data, attachment, other }

    /// The stream's index in its file.
    public var index: Int
    public var kind: Kind
    /// libavcodec's codec name ("dvvideo", "hevc", "aac", "pcm_s16le").
    public var codec: String
    /// The container's duration of the stream in seconds (may be an estimate), nil when unknown.
    public var duration: Double?
    /// The duration measured by decoding the stream end to end, when it was decoded (transcode, verify).
    public var decodedDuration: Double?
    /// Frames (video) decoded, or audio samples decoded, when decoded.
    public var decodedFrames: Int?
    /// The frame count the container's header declares (AVI, MOV), when it does.
    public var declaredFrames: Int?
    /// One frame's duration in seconds (video: 1/frame rate; audio: one codec frame), the verification tolerance.
    public var frameDuration: Double?
    public var metadata: [String: String]

    // Video
    public var width: Int?
    public var height: Int?
    public var pixelFormat: String?
    public var sampleAspectRatio: Rational?
    public var displayAspectRatio: Rational?
    public var frameRate: Rational?
    public var fieldOrder: FieldOrder?

    // Audio
    public var sampleRate: Int?
    public var channels: Int?
    public var channelLayout: String?

    /// The decoded duration when known, else the container's.
    public var bestDuration: Double? { decodedDuration ?? duration }
}

public struct Chapter: Sendable, Hashable {
    public var title: String?
    public var start: Double
    public var end: Double
}

/// What a media file contains, from its headers (`MediaProbe.probe`) or measured while decoding (a transcode's
/// `source`, a verification's `output`).
public struct MediaInfo: Sendable, Hashable {
    public var path: String
    /// libavformat's demuxer name(s), e.g. "avi" or "mov,mp4,m4a,3gp,3g2,mj2".
    public var formatName: String
    /// Seconds, from the container; nil when it does not say.
    public var duration: Double?
    public var sizeBytes: Int64
    public var streams: [StreamInfo]
    public var metadata: [String: String]
    public var chapters: [Chapter]

    /// The main video stream (the first non-cover-art video stream).
    public var video: StreamInfo? { streams.first { $0.kind == .video } }
    public var audioStreams: [StreamInfo] { streams.filter { $0.kind == .audio } }
}

/// What a transcode did.
public struct TranscodeReport: Sendable, Hashable {
    /// The profile as given.
    public var profile: TranscodeProfile
    /// The exact settings used, as key/value pairs to store with the result ("video_encoder" = "libx265",
    /// "crf" = "22", "pix_fmt" = "yuv420p10le", "filter" = the video filter chain, "container" = "mp4", ...).
    public var settings: [String: String]
    public var container: TranscodeProfile.Container
    /// libavcodec codec names of the output, e.g. "hevc" and ["aac"].
    public var videoCodec: String
    public var audioCodecs: [String]
    /// Output video duration in seconds (first frame to end of last frame).
    public var duration: Double
    /// Video frames encoded.
    public var frameCount: Int
    public var width: Int
    public var height: Int
    public var sampleAspectRatio: Rational
    public var displayAspectRatio: Rational
    /// Whether bwdif deinterlaced the video; `sourceFieldOrder` says why.
    public var deinterlaced: Bool
    public var sourceFieldOrder: FieldOrder
    public var audioStreamCount: Int
    public var inputSize: Int64
    public var outputSize: Int64
    /// The source as decoded (per-stream decoded durations filled in), for `MediaProbe.verify`.
    public var source: MediaInfo
    /// Damage found in the input: skipped or concealed packets, read errors, a file shorter than its header says.
    /// Empty for a clean input.
    public var damage: [String]
    /// Other things worth knowing (a stream that was dropped, a sample rate the encoder could not keep).
    public var notes: [String]
    /// Wall-clock time of the transcode.
    public var elapsed: Duration

    public var isDamaged: Bool { !damage.isEmpty }
}

/// What `MediaProbe.verify` checked.
public struct VerificationReport: Sendable, Hashable {
    public struct StreamCheck: Sendable, Hashable {
        public var kind: StreamInfo.Kind
        public var sourceDuration: Double
        public var outputDuration: Double
        public var tolerance: Double
        /// How much longer than the source the output may be on top of `tolerance`: an audio encoder's priming
        /// samples, which Matroska cannot tell a decoder to drop (MP4's edit list does). Extra silence at the start
        /// loses nothing; a shorter output is never allowed more than `tolerance`.
        public var primingAllowance: Double = 0
        public var passed: Bool {
            let difference = outputDuration - sourceDuration
            return difference >= -tolerance && difference <= tolerance + primingAllowance
        }
    }

    /// The output as decoded end to end.
    public var output: MediaInfo
    public var checks: [StreamCheck]
    /// Packets or frames the decoder reported as broken (must be 0 to pass).
    public var decodeErrors: Int
}

extension StreamInfo {
    /// The most an audio encoder adds in front (AAC's 1,024 priming samples, Opus's 312, rounded up to two AAC
    /// frames) where the container cannot mark them to be dropped.
    static func primingAllowance(_ output: StreamInfo) -> Double {
        guard let rate = output.sampleRate, rate > 0 else { return 0 }
        return 2048 / Double(rate)
    }
}
