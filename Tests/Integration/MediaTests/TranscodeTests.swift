import Foundation
import Media
import Testing
import TestSupport

/// Every camcorder and disc format the transcoder meets, made at test time with the ffmpeg CLI, transcoded with
/// the Media module and checked with ffprobe.
@Suite("transcoding home video formats", .onOwnThreads)
struct TranscodeTests {
    /// Within one frame (plus rounding) of the expected duration.
    static func expectDuration(_ actual: Double?, _ expected: Double, frame: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let actual else {
            Issue.record("\(what): no duration", sourceLocation: sourceLocation)
            return
        }
        #expect(abs(actual - expected) <= frame + 0.002, "\(what): \(actual) s, expected \(expected) s", sourceLocation: sourceLocation)
    }

    @Test("NTSC DV 4:3 with the default profile: bwdif, 10-bit H.265 in MP4 with hvc1, AAC, metadata kept, verified")
    func ntscDVDefaultProfile() throws {
        let directory = try Fixtures.directory("ntsc-h265")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.ntsc, aspect: "4:3", seconds: 1, in: directory)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(
            input: input.path, output: output.path, profile: .h265,
            metadata: ["original_filename": "tape 12.avi", "source_label": "DV tapes 2008", "creation_time": "2008-06-01T10:20:30Z"],
            timeLimit: .seconds(120))

        #expect(report.videoCodec == "hevc")
        #expect(report.audioCodecs == ["aac"])
        #expect(report.container == .mp4)
        #expect(report.deinterlaced)
        #expect(report.sourceFieldOrder == .bottomFieldFirst)
        #expect(report.width == 720 && report.height == 480)
        #expect(report.displayAspectRatio.reduced == Rational(4, 3))
        #expect(report.frameCount == 30)
        #expect(report.audioStreamCount == 1)
        #expect(report.damage.isEmpty, "\(report.damage)")
        #expect(report.settings["video_encoder"] == "libx265")
        #expect(report.settings["crf"] == "22")
        #expect(report.settings["preset"] == "medium")
        #expect(report.settings["pix_fmt"] == "yuv420p10le")
        #expect(report.settings["video_filter"]?.hasPrefix("bwdif=") == true)
        #expect(report.outputSize == Int64(Fixtures.size(output)))
        #expect(report.outputSize < report.inputSize / 5)

        let probe = try Fixtures.probe(output)
        let video = try #require(probe.video)
        #expect(video.codec_name == "hevc")
        #expect(video.codec_tag_string == "hvc1")
        #expect(video.pix_fmt == "yuv420p10le")
        #expect(video.width == 720 && video.height == 480)
        #expect(video.display_aspect_ratio == "4:3")
        #expect(probe.isProgressive)
        Self.expectDuration(video.seconds, 1.001, frame: 1.001 / 30, "video")
        #expect(probe.audio.count == 1)
        #expect(probe.audio.first?.codec_name == "aac")
        #expect(probe.audio.first?.sample_rate == "48000")
        #expect(probe.audio.first?.channel_layout == "stereo")
        Self.expectDuration(probe.audio.first?.seconds, 1.0, frame: 1024 / 48000, "audio")
        #expect(probe.format.tags?["creation_time"]?.hasPrefix("2008-06-01T10:20:30") == true)
        #expect(probe.format.tags?["original_filename"] == "tape 12.avi")
        #expect(probe.format.tags?["source_label"] == "DV tapes 2008")
        #expect(try Fixtures.countFrames(output) == 30)

        // faststart: the moov box comes before mdat.
        let head = try FileHandle(forReadingFrom: output).read(upToCount: 64 * 1024) ?? Data()
        let moov = head.range(of: Data("moov".utf8))
        let mdat = head.range(of: Data("mdat".utf8))
        #expect(moov != nil && (mdat == nil || moov!.lowerBound < mdat!.lowerBound), "moov must precede mdat")

        let verification = try MediaProbe.verify(output: output.path, against: report)
        #expect(verification.checks.count == 2)
        #expect(verification.decodeErrors == 0)
    }

    @Test(
        "DV in AVI keeps its display aspect ratio and is deinterlaced",
        arguments: [(Fixtures.DVSystem.ntsc, "16:9"), (.pal, "4:3"), (.pal, "16:9")])
    func dvAspectRatios(system: Fixtures.DVSystem, aspect: String) throws {
        let directory = try Fixtures.directory("dv-\(system.rawValue)")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(system, aspect: aspect, seconds: 1, in: directory)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        let height = system == .ntsc ? 480 : 576
        let frameRate = system == .ntsc ? 30000.0 / 1001 : 25
        #expect(report.deinterlaced)
        #expect(report.displayAspectRatio.reduced.description == aspect)
        let probe = try Fixtures.probe(output)
        let video = try #require(probe.video)
        #expect(video.codec_name == "h264")
        #expect(video.width == 720 && video.height == height)
        #expect(video.display_aspect_ratio == aspect)
        #expect(video.pix_fmt == "yuv420p", "4:1:1 and 4:2:0 DV both become 4:2:0")
        #expect(probe.isProgressive)
        Self.expectDuration(video.seconds, system == .ntsc ? 1.001 : 1.0, frame: 1 / frameRate, "video")
        #expect(probe.audio.count == 1)
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("MPEG-2 program stream with AC-3 (a DVD VOB): interlaced top field first, 16:9")
    func dvdVOB() throws {
        let directory = try Fixtures.directory("vob")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("VTS_01_1.VOB")
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 720, height: 480, fieldRate: "60000/1001", bottomFirst: false) + Fixtures.sine()
                + ["-t", "1", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "6M", "-aspect", "16:9",
                    "-c:a", "ac3", "-b:a", "192k", "-f", "vob"],
            output: input)

        let report = try Transcoder.transcode(input: input.path, output: directory.appendingPathComponent("out.mp4").path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.deinterlaced)
        #expect(report.sourceFieldOrder == .topFieldFirst)
        #expect(report.settings["video_filter"]?.contains("parity=tff") == true)
        let probe = try Fixtures.probe(directory.appendingPathComponent("out.mp4"))
        #expect(probe.video?.display_aspect_ratio == "16:9")
        #expect(probe.video?.width == 720 && probe.video?.height == 480)
        #expect(probe.isProgressive)
        #expect(probe.audio.map(\.codec_name) == ["aac"])
        #expect(probe.audio.first?.channel_layout == "stereo")
        Self.expectDuration(probe.video?.seconds, 1.001, frame: 1.001 / 30, "video")
        try MediaProbe.verify(output: directory.appendingPathComponent("out.mp4").path, against: report)
    }

    @Test("HDV-like MPEG-2 transport stream, 1440×1080i anamorphic: display 16:9 kept")
    func hdvTransportStream() throws {
        let directory = try Fixtures.directory("hdv")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("clip.m2t")
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 1440, height: 1080, fieldRate: "50", bottomFirst: false) + Fixtures.sine()
                + ["-t", "0.6", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "20M", "-aspect", "16:9",
                    "-c:a", "mp2", "-b:a", "384k", "-f", "mpegts"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.deinterlaced)
        #expect(report.width == 1440 && report.height == 1080)
        #expect(report.sampleAspectRatio.reduced == Rational(4, 3))
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.width == 1440 && probe.video?.height == 1080)
        #expect(probe.video?.sample_aspect_ratio == "4:3")
        #expect(probe.video?.display_aspect_ratio == "16:9")
        #expect(probe.isProgressive)
        #expect(probe.audio.count == 1)
        // The transport stream starts at 1.4 s; the output starts at 0.
        #expect(abs(Double(probe.format.duration ?? "0")! - 0.6) < 0.1)
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("H.264 in MTS (AVCHD-like) with AC-3")
    func avchdMTS() throws {
        let directory = try Fixtures.directory("mts")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("00001.MTS")
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 1920, height: 1080, fieldRate: "50", bottomFirst: false) + Fixtures.sine()
                + ["-t", "0.6", "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct", "-x264opts", "tff=1",
                    "-c:a", "ac3", "-f", "mpegts"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.deinterlaced)
        #expect(report.frameCount == 15)
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.codec_name == "h264")
        #expect(probe.video?.width == 1920 && probe.video?.height == 1080)
        #expect(probe.video?.display_aspect_ratio == "16:9")
        #expect(probe.isProgressive)
        #expect(probe.audio.map(\.codec_name) == ["aac"])
        Self.expectDuration(probe.video?.seconds, 0.6, frame: 0.04, "video")
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("MJPEG in MOV with PCM: progressive stays untouched; chapters, title and creation time are kept")
    func mjpegMOV() throws {
        let directory = try Fixtures.directory("mjpeg")
        defer { Fixtures.cleanUp(directory) }
        let chapters = directory.appendingPathComponent("chapters.txt")
        try Data(";FFMETADATA1\ntitle=Birthday\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=Cake\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Candles\n".utf8).write(to: chapters)
        let input = directory.appendingPathComponent("MVI_0042.MOV")
        try Fixtures.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30"] + Fixtures.sine(rate: 44100, layout: "mono")
                + ["-i", chapters.path, "-map", "0:v", "-map", "1:a", "-map_metadata", "2", "-map_chapters", "2", "-t", "1",
                    "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le", "-metadata", "creation_time=2001-02-03T04:05:06Z"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: ["source_label": "card 3"], timeLimit: .seconds(60))

        #expect(!report.deinterlaced)
        #expect(report.sourceFieldOrder == .progressive)
        #expect(report.settings["video_filter"]?.contains("bwdif") == false)
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.width == 640 && probe.video?.height == 480)
        #expect(probe.video?.display_aspect_ratio == "4:3")
        #expect(["yuv420p", "yuvj420p"].contains(probe.video?.pix_fmt ?? ""))
        #expect(probe.audio.count == 1)
        #expect(probe.audio.first?.channel_layout == "mono")
        #expect(probe.audio.first?.sample_rate == "44100")
        #expect(probe.format.tags?["creation_time"]?.hasPrefix("2001-02-03T04:05:06") == true)
        #expect(probe.format.tags?["title"] == "Birthday")
        #expect(probe.format.tags?["source_label"] == "card 3")
        #expect(probe.chapters?.compactMap { $0.tags?["title"] } == ["Cake", "Candles"])
        #expect(try Fixtures.countFrames(output) == 30)
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("uncompressed QuickTime with its field order only in the container: every frame deinterlaced")
    func uncompressedQuickTime() throws {
        let directory = try Fixtures.directory("uyvy")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("capture.mov")
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 320, height: 240, fieldRate: "50", bottomFirst: true) + Fixtures.sine()
                + ["-t", "0.4", "-c:v", "rawvideo", "-pix_fmt", "uyvy422", "-field_order", "bb", "-c:a", "pcm_s16le"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.sourceFieldOrder == .bottomFieldFirst)
        #expect(report.settings["video_filter"] == "bwdif=mode=send_frame:parity=bff:deint=all,format=yuv420p")
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.pix_fmt == "yuv420p", "4:2:2 becomes 4:2:0")
        #expect(probe.isProgressive)
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("two audio tracks: both kept with their layouts, sample rates and languages")
    func twoAudioTracks() throws {
        let directory = try Fixtures.directory("two-audio")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("two.mkv")
        try Fixtures.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"] + Fixtures.sine() + Fixtures.sine(rate: 44100, frequency: 1000, layout: "mono")
                + ["-map", "0", "-map", "1", "-map", "2", "-t", "1", "-c:v", "mpeg4", "-c:a", "pcm_s16le",
                    "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.audioStreamCount == 2)
        let probe = try Fixtures.probe(output)
        #expect(probe.audio.count == 2)
        #expect(probe.audio.map(\.codec_name) == ["aac", "aac"])
        #expect(probe.audio.map(\.channel_layout) == ["stereo", "mono"])
        #expect(probe.audio.map(\.sample_rate) == ["48000", "44100"])
        #expect(probe.audio.map { $0.tags?["language"] } == ["eng", "spa"])
        let verification = try MediaProbe.verify(output: output.path, against: report)
        #expect(verification.checks.filter { $0.kind == .audio }.count == 2)
    }

    @Test("5.1 audio keeps six channels")
    func surroundAudio() throws {
        let directory = try Fixtures.directory("surround")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("surround.mkv")
        try Fixtures.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"] + Fixtures.sine(layout: "5.1")
                + ["-t", "1", "-c:v", "mpeg4", "-c:a", "pcm_s16le"],
            output: input)
        let output = directory.appendingPathComponent("out.mp4")
        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))
        let probe = try Fixtures.probe(output)
        #expect(probe.audio.first?.channels == 6)
        #expect(probe.audio.first?.channel_layout == "5.1")
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("the AV1 profile writes AV1 and Opus in Matroska")
    func av1Profile() throws {
        let directory = try Fixtures.directory("av1")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("small.mkv")
        try Fixtures.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"] + Fixtures.sine(rate: 44100) + ["-t", "0.5", "-c:v", "mpeg4", "-c:a", "pcm_s16le"],
            output: input)
        let output = directory.appendingPathComponent("out.mkv")
        var profile = TranscodeProfile.av1
        profile.preset = "12"

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: profile, metadata: ["source_label": "x"], timeLimit: .seconds(60))

        #expect(report.container == .matroska)
        let probe = try Fixtures.probe(output)
        #expect(probe.format.format_name.contains("matroska"))
        #expect(probe.video?.codec_name == "av1")
        #expect(probe.audio.first?.codec_name == "opus")
        // Opus cannot do 44.1 kHz: resampled, and the report says so.
        #expect(probe.audio.first?.sample_rate == "48000")
        #expect(report.notes.contains { $0.contains("44100 Hz") })
        try MediaProbe.verify(output: output.path, against: report)
    }

    @Test("profiles by name, and a clear error for an unknown one")
    func profileNames() throws {
        #expect(try TranscodeProfile.named("h265") == .h265)
        #expect(try TranscodeProfile.named("H264") == .h264)
        #expect(try TranscodeProfile.named(" av1 ") == .av1)
        #expect(TranscodeProfile.h265.videoEncoder == "libx265" && TranscodeProfile.h265.crf == 22 && TranscodeProfile.h265.preset == "medium")
        #expect(TranscodeProfile.h265.container == .mp4 && TranscodeProfile.h265.videoCodecTag == "hvc1")
        #expect(TranscodeProfile.av1.container == .matroska && TranscodeProfile.av1.audioEncoder == "libopus")
        let error = #expect(throws: MediaError.self) { try TranscodeProfile.named("vp9") }
        #expect(error?.kind == .invalidProfile)
        #expect(error?.description == "unknown transcode profile \"vp9\": expected one of h265, h264, av1")
    }

    @Test("probe reads DV's aspect ratio, field order and audio from the headers")
    func probeDV() throws {
        let directory = try Fixtures.directory("probe")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.pal, aspect: "16:9", seconds: 0.5, in: directory)
        let info = try MediaProbe.probe(path: input.path)
        let video = try #require(info.video)
        #expect(video.codec == "dvvideo")
        #expect(video.width == 720 && video.height == 576)
        #expect(video.displayAspectRatio?.reduced == Rational(16, 9))
        #expect(info.audioStreams.count == 1)
        #expect(info.audioStreams.first?.sampleRate == 48000)
        #expect(info.sizeBytes == Int64(Fixtures.size(input)))
        #expect(abs((video.duration ?? 0) - 0.52) < 0.05)
        #expect(video.fieldOrder != .progressive, "DV is interlaced (the stream leaves the order to the frames)")

        // The suggested time limit grows with length and pixel rate.
        let limit = Transcoder.suggestedTimeLimit(for: info)
        #expect(limit >= .seconds(600) && limit <= .seconds(610))
        var hour = info
        hour.streams[0].duration = 3600
        hour.streams[0].width = 1920
        hour.streams[0].height = 1080
        #expect(Transcoder.suggestedTimeLimit(for: hour) > Transcoder.suggestedTimeLimit(for: info) + .seconds(3600 * 4))
    }
}
