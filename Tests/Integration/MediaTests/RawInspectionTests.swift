import Foundation
import Media
import Testing
import TestSupport

/// `MediaProbe.inspectRaw` reads the raw file in a pass of its own, and `RawInspection.verdict` judges a transcode
/// against it. The transcoder's own check (`verify(output:against: report)`) passes for every damaged or
/// inconsistent fixture here — it compares the output with what the transcoder decoded — so these are the cases
/// where the raw file used to be deleted.
@Suite("raw inspection: the raw file, not the transcode, decides whether the raw file may go", .onOwnThreads)
struct RawInspectionTests {
    /// Transcodes with the fast profile, verifies the output the transcoder's way (which must pass: that is the
    /// gap), and judges it against the raw inspection.
    static func transcodeAndJudge(_ input: URL, _ inspection: RawInspection, in directory: URL) throws -> RawVerdict {
        let output = directory.appendingPathComponent("out-\(UUID().uuidString).mp4")
        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(120))
        let verification = try MediaProbe.verify(output: output.path, against: report)
        return inspection.verdict(output: verification.output)
    }

    @Test("a clean DV file: every stream measured, no problem, and its transcode is faithful")
    func cleanDV() throws {
        let directory = try Fixtures.directory("raw-clean")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.ntsc, aspect: "4:3", seconds: 2, in: directory)

        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect(inspection.problems.isEmpty, "\(inspection.problems)")
        let video = try #require(inspection.mainVideo)
        #expect(video.kind == .video && video.codec == "dvvideo")
        #expect(video.packets == 60)
        #expect(video.decodedFrames == 60)
        #expect(abs((video.decodedDuration ?? 0) - 2.002) < 0.01, "\(String(describing: video.decodedDuration))")
        #expect(abs((video.packetSpan ?? 0) - 2.002) < 0.04, "\(String(describing: video.packetSpan))")
        let audio = try #require(inspection.streams(.audio).first)
        #expect(abs((audio.decodedDuration ?? 0) - 2.0) < 0.05, "\(String(describing: audio.decodedDuration))")
        #expect(inspection.readError == nil && inspection.damagedDVFrames == 0 && inspection.aspectChanges.isEmpty)

        #expect(try Self.transcodeAndJudge(input, inspection, in: directory) == .transcodeIsFaithful)
    }

    /// Camcorder and recorder formats as the transcode tests make them (B-frames, interlacing, open GOPs, AC-3,
    /// presentation-time-only Matroska): a clean file raises no problem, so it is transcoded as before.
    @Test("clean files of every kind raise no problem", arguments: [
        ("dvd.mpg", ["-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "6M", "-bf", "2", "-aspect", "16:9", "-c:a", "ac3", "-f", "dvd"]),
        ("hdv.m2t", ["-s", "1440x1080", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "20M", "-bf", "2", "-aspect", "16:9", "-c:a", "mp2", "-f", "mpegts"]),
        ("avchd.mts", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-flags", "+ilme+ildct", "-x264opts", "tff=1", "-c:a", "ac3", "-f", "mpegts"]),
        ("b-frames.mkv", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-c:a", "aac"]),
        ("clip.mov", ["-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le"]),
    ])
    func cleanFiles(name: String, arguments: [String]) throws {
        let directory = try Fixtures.directory("raw-clean-kinds")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent(name)
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 720, height: 480, fieldRate: "60000/1001", bottomFirst: false) + Fixtures.sine() + ["-t", "2"] + arguments,
            output: input)

        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect(inspection.problems.isEmpty, "\(name): \(inspection.problems)")
        #expect(inspection.streams(.audio).count == 1 && (inspection.mainVideo?.decodedFrames ?? 0) >= 59, "\(inspection)")
    }

    @Test("bytes overwritten in the middle of a DV file are found (the DV decoder itself reports nothing)", arguments: ["avi", "dv"])
    func damagedDV(container: String) throws {
        let directory = try Fixtures.directory("raw-damaged-dv")
        defer { Fixtures.cleanUp(directory) }
        let input = container == "avi" ? try Fixtures.dv(.ntsc, aspect: "4:3", seconds: 2, in: directory) : try Fixtures.rawDV(aspect: "4:3", seconds: 2, in: directory)
        #expect(try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60)).problems.isEmpty)
        try Fixtures.overwriteMiddle(input, bytes: 300_000)

        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        if container == "avi" {
            // The AVI demuxer resynchronises past the broken chunks and numbers the frames on as if none were lost.
            #expect(inspection.indexedVideoFrames == 60 && (inspection.mainVideo?.packets ?? 60) < 60, "\(inspection)")
            #expect(inspection.problems.contains { $0.contains("read or decode errors") && $0.contains("video frames the file's index lists") }, "\(inspection.problems)")
        } else {
            // Raw DV has fixed-size frames: the garbage arrives as frames that decode to a wrong picture without an error.
            #expect(inspection.damagedDVFrames >= 2, "\(inspection)")
            #expect(inspection.problems.contains { $0.contains("read or decode errors") && $0.contains("DV frames") }, "\(inspection.problems)")
        }
        // The transcoder's own check is satisfied: every frame "decoded".
        let verdict = try Self.transcodeAndJudge(input, inspection, in: directory)
        #expect(verdict.reasons.contains { $0.contains("read or decode errors") }, "\(verdict)")
    }

    @Test("bytes overwritten in the middle of an MPEG-2 program stream are found")
    func damagedMPEG2() throws {
        let directory = try Fixtures.directory("raw-damaged-mpeg2")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.mpeg2(seconds: 2, frequency: 440, in: directory, name: "tape.mpg")
        try Fixtures.overwriteMiddle(input, bytes: 300_000)

        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect((inspection.mainVideo?.decodeErrors ?? 0) > 0, "\(inspection)")
        #expect(inspection.problems.contains { $0.contains("read or decode errors") && $0.contains("mpeg2video") }, "\(inspection.problems)")
        #expect(try Self.transcodeAndJudge(input, inspection, in: directory).reasons.contains { $0.contains("read or decode errors") })
    }

    @Test("two audio streams and a subtitle stream: the transcode carries all three (Matroska) and is faithful; an output without the subtitles would keep the raw file")
    func subtitlesCarried() throws {
        let directory = try Fixtures.directory("raw-subtitles")
        defer { Fixtures.cleanUp(directory) }
        let subtitles = directory.appendingPathComponent("lines.srt")
        try Data("1\n00:00:00,200 --> 00:00:01,200\nHappy birthday!\n\n2\n00:00:01,300 --> 00:00:01,900\nBlow out the candles\n".utf8).write(to: subtitles)
        let input = directory.appendingPathComponent("party.mkv")
        try Fixtures.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"] + Fixtures.sine(frequency: 440) + Fixtures.sine(frequency: 660, layout: "mono")
                + ["-i", subtitles.path, "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-t", "2",
                   "-c:v", "mjpeg", "-c:a", "pcm_s16le", "-c:s", "srt"],
            output: input)

        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect(inspection.problems.isEmpty, "\(inspection.problems)")
        #expect(inspection.streams(.audio).count == 2)
        let subtitle = try #require(inspection.streams(.subtitle).first)
        #expect(subtitle.codec == "subrip" && subtitle.packets == 2)
        let output = directory.appendingPathComponent("party-out.mkv")
        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(120))
        #expect(report.container == .matroska, "\(report.notes)")
        let verification = try MediaProbe.verify(output: output.path, against: report)
        #expect(inspection.verdict(output: verification.output).reasons.isEmpty, "\(inspection.verdict(output: verification.output))")
        #expect(verification.output.streams.filter { $0.kind == .subtitle }.count == 1)

        // The same output with its subtitles stripped is judged unfaithful: the check that keeps raw files still bites.
        let stripped = directory.appendingPathComponent("party-stripped.mkv")
        try Fixtures.ffmpeg(["-i", output.path, "-map", "0", "-map", "-0:s", "-c", "copy"], output: stripped)
        let strippedInfo = try MediaProbe.verify(output: stripped.path, against: report).output
        #expect(inspection.verdict(output: strippedInfo).reasons == ["subtitle stream 3 (subrip) has no counterpart in the output"])
    }

    @Test("two recordings concatenated byte for byte: the timestamps restart, and the transcode plays both one after another (4 s, 2 chapters)", arguments: ["dvd", "mpegts"])
    func concatenatedRecordings(format: String) throws {
        let directory = try Fixtures.directory("raw-concat-\(format)")
        defer { Fixtures.cleanUp(directory) }
        let first = try Fixtures.mpeg2(seconds: 2, frequency: 440, in: directory, name: "a.\(format)", format: format)
        let second = try Fixtures.mpeg2(seconds: 2, frequency: 880, in: directory, name: "b.\(format)", format: format)
        let input = format == "mpegts"
            ? try Fixtures.concatenateTransportStreams([first, second], as: "both.\(format)", in: directory)
            : try Fixtures.concatenate([first, second], as: "both.\(format)", in: directory)

        // Each recording alone is clean: no false alarm on ordinary MPEG timestamps.
        #expect(try MediaProbe.inspectRaw(path: first.path, timeLimit: .seconds(60)).problems.isEmpty)
        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect(inspection.mainVideo?.restarts.count == 1, "\(inspection)")
        #expect(inspection.problems.isEmpty, "separate recordings are the transcoder's to join: \(inspection.problems)")
        #expect(abs((inspection.mainVideo?.decodedDuration ?? 0) - 4) < 0.1, "both recordings count: \(inspection)")

        let output = directory.appendingPathComponent("both.mp4")
        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, timeLimit: .seconds(120))
        let verification = try MediaProbe.verify(output: output.path, against: report)
        #expect(inspection.verdict(output: verification.output).reasons.isEmpty, "\(inspection.verdict(output: verification.output))")
        #expect(abs(report.duration - 4) < 0.1, "\(report.duration)")
        let chapters = String(decoding: try Fixtures.run("ffprobe", ["-v", "error", "-show_chapters", "-of", "csv=p=0", output.path]), as: UTF8.self)
        let starts = chapters.split(separator: "\n").compactMap { $0.split(separator: ",").dropFirst(3).first.flatMap { Double($0) } }
        #expect(starts.count == 2 && starts[0] == 0 && abs(starts[1] - 2) < 0.1, "\(chapters)")
        #expect(chapters.contains("Recording 2"), "\(chapters)")
    }

    @Test("a DV tape switched from 4:3 to 16:9: the change is found in the decoded frames, and the transcode shows both parts right in a 16:9 picture (the 4:3 part pillarboxed)")
    func aspectChange() throws {
        let directory = try Fixtures.directory("raw-aspect")
        defer { Fixtures.cleanUp(directory) }
        let narrow = try Fixtures.rawDV(aspect: "4:3", seconds: 1, in: directory)
        let wide = try Fixtures.rawDV(aspect: "16:9", seconds: 1, in: directory)
        let input = try Fixtures.concatenate([narrow, wide], as: "tape.dv", in: directory)

        #expect(try MediaProbe.inspectRaw(path: wide.path, timeLimit: .seconds(60)).problems.isEmpty)
        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))

        #expect(inspection.aspectChanges.count == 1, "\(inspection.aspectChanges)")
        // About a second in (the first file's frames), whatever ffmpeg rounded its -t to.
        #expect(inspection.aspectChanges.first?.hasPrefix("4:3 to 16:9 at 0.9") == true || inspection.aspectChanges.first?.hasPrefix("4:3 to 16:9 at 1.0") == true, "\(inspection.aspectChanges)")
        #expect(inspection.problems.isEmpty, "an aspect change is the transcoder's to handle: \(inspection.problems)")
        #expect(inspection.widestDisplayAspect == Rational(16, 9))

        let output = directory.appendingPathComponent("tape.mp4")
        let report = try Transcoder.transcode(
            input: input.path, output: output.path, profile: Fixtures.fastH264, canvasAspect: inspection.widestDisplayAspect, timeLimit: .seconds(120))
        #expect(report.displayAspectRatio.reduced == Rational(16, 9))
        let verification = try MediaProbe.verify(output: output.path, against: report)
        #expect(inspection.verdict(output: verification.output).reasons.isEmpty, "\(inspection.verdict(output: verification.output))")
        // The 4:3 second: black bars at both sides, picture in the middle. The 16:9 second: picture edge to edge.
        #expect(try Fixtures.meanLuma(output, at: 0.4, region: "crop=60:ih:0:0") < 24)
        #expect(try Fixtures.meanLuma(output, at: 0.4, region: "crop=60:ih:iw-60:0") < 24)
        #expect(try Fixtures.meanLuma(output, at: 0.4, region: "crop=60:60:330:210") > 40)
        #expect(try Fixtures.meanLuma(output, at: 1.5, region: "crop=60:ih:0:0") > 40)
        // Without the canvas, the 16:9 second is letterboxed into the first frame's 4:3 picture, still not squeezed.
        let letterboxed = directory.appendingPathComponent("tape-4x3.mp4")
        _ = try Transcoder.transcode(input: input.path, output: letterboxed.path, profile: Fixtures.fastH264, timeLimit: .seconds(120))
        #expect(try Fixtures.meanLuma(letterboxed, at: 1.5, region: "crop=iw:30:0:0") < 24)
        #expect(try Fixtures.meanLuma(letterboxed, at: 0.4, region: "crop=iw:30:0:0") > 40)
    }

    @Test("a DV tape with two recordings on different days: told apart by the camcorder's date and time stamps, and each a chapter of the transcode titled with its date")
    func recordingDates() throws {
        let directory = try Fixtures.directory("raw-dates")
        defer { Fixtures.cleanUp(directory) }
        func recording(_ name: String, at time: String) throws -> URL {
            let url = directory.appendingPathComponent(name)
            try Fixtures.ffmpeg(
                ["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25"] + Fixtures.sine()
                    + ["-t", "2", "-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-metadata", "creation_time=\(time)", "-f", "dv"],
                output: url)
            return url
        }
        let june = try recording("june.dv", at: "2004-06-12T14:03:22Z")
        let july = try recording("july.dv", at: "2004-07-01T09:15:00Z")
        let input = try Fixtures.concatenate([june, july], as: "tape.dv", in: directory)

        #expect(try MediaProbe.inspectRaw(path: june.path, timeLimit: .seconds(60)).recordingChapters.isEmpty, "one recording: no chapters")
        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))
        #expect(inspection.recordings.map(\.recordedAt.description) == ["2004-06-12 14:03:22", "2004-07-01 09:15:00"], "\(inspection.recordings)")
        #expect(inspection.recordings.map(\.start) == [0, 2])
        #expect(inspection.problems.isEmpty, "\(inspection.problems)")

        let output = directory.appendingPathComponent("tape.mp4")
        _ = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, chapters: inspection.recordingChapters, timeLimit: .seconds(120))
        let chapters = String(decoding: try Fixtures.run("ffprobe", ["-v", "error", "-show_chapters", "-of", "csv=p=0", output.path]), as: UTF8.self)
        #expect(chapters.contains("Recorded 2004-06-12 14:03:22") && chapters.contains("Recorded 2004-07-01 09:15:00"), "\(chapters)")
    }

    @Test("an output shorter than the raw file is caught even when the transcoder's own report agrees with it")
    func shortOutput() throws {
        let directory = try Fixtures.directory("raw-short")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.pal, aspect: "16:9", seconds: 2, in: directory)
        let inspection = try MediaProbe.inspectRaw(path: input.path, timeLimit: .seconds(60))
        // What a transcode that stopped half way would have seen: the first second.
        let half = directory.appendingPathComponent("half.avi")
        try Fixtures.ffmpeg(["-i", input.path, "-t", "1", "-c", "copy"], output: half)

        let verdict = try Self.transcodeAndJudge(half, inspection, in: directory)

        #expect(verdict.reasons.contains { $0.hasPrefix("video stream 0 (dvvideo) lasts 2.0 s in the raw file but 1.0 s in the output") }, "\(verdict)")
        #expect(verdict.reasons.contains { $0.hasPrefix("audio stream 1 (pcm_s16le) lasts") }, "\(verdict)")
    }
}

extension Fixtures {
    /// Overwrites `bytes` bytes from 40% into the file with pseudo-random garbage (a bad sector, a tape dropout).
    static func overwriteMiddle(_ url: URL, bytes: Int, seed: UInt64 = 7) throws {
        var state = seed | 1
        var garbage = [UInt8](repeating: 0, count: bytes)
        for index in garbage.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            garbage[index] = UInt8(truncatingIfNeeded: state)
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seek(toOffset: UInt64(size(url) * 2 / 5))
        try handle.write(contentsOf: Data(garbage))
        try handle.close()
    }

    /// The files byte for byte one after the other (`cat a b > c`).
    static func concatenate(_ parts: [URL], as name: String, in directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(name)
        var bytes = Data()
        for part in parts { bytes += try Data(contentsOf: part) }
        try bytes.write(to: url)
        return url
    }

    /// Transport streams back to back as one camcorder writes them: the continuity counters run on across the
    /// join (a camera's stream is one stream; only its clock restarts), so the only break is the timestamps'.
    static func concatenateTransportStreams(_ parts: [URL], as name: String, in directory: URL) throws -> URL {
        var bytes: [UInt8] = []
        for part in parts { bytes += Array(try Data(contentsOf: part)) }
        var counters: [Int: UInt8] = [:]
        for start in stride(from: 0, to: bytes.count - 187, by: 188) where bytes[start] == 0x47 {
            let pid = Int(bytes[start + 1] & 0x1F) << 8 | Int(bytes[start + 2])
            guard bytes[start + 3] & 0x10 != 0 else { continue }  // no payload: the counter does not move
            let next = counters[pid].map { ($0 + 1) & 0x0F } ?? (bytes[start + 3] & 0x0F)
            bytes[start + 3] = bytes[start + 3] & 0xF0 | next
            counters[pid] = next
        }
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// MPEG-2 video and MP2 audio in a DVD program stream (`format` "dvd") or a transport stream ("mpegts"), as
    /// DVD recorders and HDV camcorders write them.
    static func mpeg2(seconds: Double, frequency: Int, in directory: URL, name: String, format: String = "dvd") throws -> URL {
        let url = directory.appendingPathComponent(name)
        try ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001"] + sine(frequency: frequency)
                + ["-t", String(seconds), "-c:v", "mpeg2video", "-b:v", "4M", "-c:a", "mp2", "-f", format],
            output: url)
        return url
    }

    /// A raw DV stream (no container), as dvgrab writes it: frames can be concatenated byte for byte.
    static func rawDV(aspect: String, seconds: Double, in directory: URL) throws -> URL {
        let url = directory.appendingPathComponent("ntsc-\(aspect.replacingOccurrences(of: ":", with: "x")).dv")
        try ffmpeg(
            interlacedSource(width: 720, height: 480, fieldRate: "60000/1001", bottomFirst: true) + sine()
                + ["-t", String(seconds), "-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", aspect, "-c:a", "pcm_s16le", "-f", "dv"],
            output: url)
        return url
    }
}
