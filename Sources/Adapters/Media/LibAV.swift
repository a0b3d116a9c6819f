import CLibAV

/// One of the libav libraries: the version the program was compiled against and the one loaded at run time.
public struct LibAVLibrary: Sendable, Hashable {
    public let name: String
    public let compiledVersion: String
    public let runtimeVersion: String
    /// A different major version at run time means an ABI the program was not built for.
    public let isCompatible: Bool
}

/// What the transcoder needs from libav, and whether this machine's build has it.
public struct LibAVCapability: Sendable, Hashable {
    public enum Kind: String, Sendable { case encoder, decoder, filter }
    public let kind: Kind
    public let name: String
    public let purpose: String
    public let isAvailable: Bool
}

/// Process-wide facts about the linked libav.
public enum LibAV {
    public static func libraries() -> [LibAVLibrary] {
        [
            library("libavformat", compiled: clibav_header_version_avformat(), runtime: avformat_version()),
            library("libavcodec", compiled: clibav_header_version_avcodec(), runtime: avcodec_version()),
            library("libavfilter", compiled: clibav_header_version_avfilter(), runtime: avfilter_version()),
            library("libavutil", compiled: clibav_header_version_avutil(), runtime: avutil_version()),
            library("libswscale", compiled: clibav_header_version_swscale(), runtime: swscale_version()),
            library("libswresample", compiled: clibav_header_version_swresample(), runtime: swresample_version()),
        ]
    }

    /// The encoders and filters the default and optional transcoding profiles use.
    public static func capabilities() -> [LibAVCapability] {
        func encoder(_ name: String, _ purpose: String) -> LibAVCapability {
            LibAVCapability(kind: .encoder, name: name, purpose: purpose, isAvailable: avcodec_find_encoder_by_name(name) != nil)
        }
        func filter(_ name: String, _ purpose: String) -> LibAVCapability {
            LibAVCapability(kind: .filter, name: name, purpose: purpose, isAvailable: avfilter_get_by_name(name) != nil)
        }
        func decoder(_ name: String, _ purpose: String) -> LibAVCapability {
            LibAVCapability(kind: .decoder, name: name, purpose: purpose, isAvailable: avcodec_find_decoder_by_name(name) != nil)
        }
        return [
            encoder("libx265", "H.265 video (default profile)"),
            encoder("libx264", "H.264 video (h264 profile)"),
            encoder("libsvtav1", "AV1 video (av1 profile)"),
            encoder("aac", "AAC audio"),
            encoder("libopus", "Opus audio (av1 profile)"),
            filter("bwdif", "deinterlacing"),
            filter("scale", "pixel format conversion to 4:2:0"),
            filter("aresample", "audio resampling"),
            decoder("dvvideo", "DV camcorder video"),
            decoder("mpeg2video", "DVD and HDV video"),
            decoder("h264", "AVCHD video"),
            decoder("mjpeg", "Motion JPEG video"),
            decoder("ac3", "DVD audio"),
        ]
    }

    /// `av_strerror`'s text for a libav error code.
    public static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if av_strerror(code, &buffer, buffer.count) < 0 {
            return "libav error \(code)"
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func library(_ name: String, compiled: UInt32, runtime: UInt32) -> LibAVLibrary {
        LibAVLibrary(
            name: name,
            compiledVersion: versionString(compiled),
            runtimeVersion: versionString(runtime),
            isCompatible: clibav_version_major(compiled) == clibav_version_major(runtime))
    }

    private static func versionString(_ version: UInt32) -> String {
        "\(clibav_version_major(version)).\(clibav_version_minor(version)).\(clibav_version_micro(version))"
    }
}
