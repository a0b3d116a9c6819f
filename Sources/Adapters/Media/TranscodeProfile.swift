/// What a transcode produces: video encoder and quality, audio encoder, container.
///
/// Three presets: `.h265` (the default), `.h264` and `.av1`. The fields are public and mutable so tests and the
/// benchmark can tune them (for example a faster preset); the worker uses the presets as they are.
public struct TranscodeProfile: Sendable, Hashable, CustomStringConvertible {
    public enum Container: String, Sendable, Hashable {
        case mp4
        case matroska

        /// The libavformat muxer name.
        public var muxerName: String { rawValue }
        public var fileExtension: String { self == .mp4 ? "mp4" : "mkv" }
    }

    /// "h265", "h264" or "av1".
    public var name: String
    /// libavcodec encoder name, e.g. "libx265".
    public var videoEncoder: String
    /// Constant rate factor (x264/x265/SVT-AV1 `crf`).
    public var crf: Int
    /// Encoder speed preset ("medium" for x264/x265, a number for SVT-AV1).
    public var preset: String
    /// Pixel formats in order of preference; the first the encoder supports is used. All are 4:2:0, so 4:1:1 DV
    /// and 4:2:2 sources are converted explicitly.
    public var pixelFormats: [String]
    /// A codec tag for the video stream in MP4 ("hvc1" so Apple players accept H.265), or nil for the default.
    public var videoCodecTag: String?
    /// More encoder options (libavcodec private options such as "x265-params").
    public var videoOptions: [String: String]
    /// libavcodec audio encoder name: "aac" or "libopus".
    public var audioEncoder: String
    /// Audio bit rate per channel, bits per second.
    public var audioBitRatePerChannel: Int
    /// The container; when it cannot hold a stream, `fallbackContainer` is used instead.
    public var container: Container
    public var fallbackContainer: Container

    public init(
        name: String, videoEncoder: String, crf: Int, preset: String, pixelFormats: [String], videoCodecTag: String?,
        videoOptions: [String: String], audioEncoder: String, audioBitRatePerChannel: Int, container: Container,
        fallbackContainer: Container
    ) {
        self.name = name
        self.videoEncoder = videoEncoder
        self.crf = crf
        self.preset = preset
        self.pixelFormats = pixelFormats
        self.videoCodecTag = videoCodecTag
        self.videoOptions = videoOptions
        self.audioEncoder = audioEncoder
        self.audioBitRatePerChannel = audioBitRatePerChannel
        self.container = container
        self.fallbackContainer = fallbackContainer
    }

    /// H.265 with libx265, CRF 22, preset medium, 10-bit 4:2:0 where the x265 build has it; AAC; MP4 with faststart
    /// and the hvc1 tag.
    public static let h265 = TranscodeProfile(
        name: "h265", videoEncoder: "libx265", crf: 22, preset: "medium", pixelFormats: ["yuv420p10le", "yuv420p"],
        videoCodecTag: "hvc1", videoOptions: ["x265-params": "log-level=error"], audioEncoder: "aac",
        audioBitRatePerChannel: 96_000, container: .mp4, fallbackContainer: .matroska)

    /// H.264 with libx264, CRF 20, preset medium, 8-bit 4:2:0 (plays everywhere); AAC; MP4.
    public static let h264 = TranscodeProfile(
        name: "h264", videoEncoder: "libx264", crf: 20, preset: "medium", pixelFormats: ["yuv420p"],
        videoCodecTag: nil, videoOptions: ["x264-params": "log=0"], audioEncoder: "aac", audioBitRatePerChannel: 96_000, container: .mp4,
        fallbackContainer: .matroska)

    /// AV1 with SVT-AV1, CRF 30, preset 8, 10-bit 4:2:0; Opus; Matroska.
    public static let av1 = TranscodeProfile(
        name: "av1", videoEncoder: "libsvtav1", crf: 30, preset: "8", pixelFormats: ["yuv420p10le", "yuv420p"],
        videoCodecTag: nil, videoOptions: [:], audioEncoder: "libopus", audioBitRatePerChannel: 64_000,
        container: .matroska, fallbackContainer: .matroska)

    public static let presets: [TranscodeProfile] = [.h265, .h264, .av1]

    /// The preset with this name ("h265", "h264", "av1"; case-insensitive, "hevc" and "x265"-style aliases accepted).
    public static func named(_ name: String) throws(MediaError) -> TranscodeProfile {
        switch name.lowercased().trimmingWhitespace() {
        case "h265", "hevc", "x265", "libx265": return .h265
        case "h264", "avc", "x264", "libx264": return .h264
        case "av1", "svtav1", "libsvtav1": return .av1
        default:
            throw MediaError(.invalidProfile, "unknown transcode profile \"\(name)\": expected one of h265, h264, av1")
        }
    }

    public var description: String {
        "\(name): \(videoEncoder) crf \(crf) preset \(preset), \(pixelFormats.first ?? "default"), \(audioEncoder) \(audioBitRatePerChannel / 1000) kb/s per channel, \(container.rawValue)"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
