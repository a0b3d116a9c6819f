import Foundation
import Media
import Testing
import TestSupport

/// Inputs that are not video, are empty, cut short or damaged: each ends as a clear `MediaError` or a best-effort
/// output with the damage reported, never a crash or a hang.
@Suite("bad input, time limits and verification failures", .onOwnThreads)
struct BadInputTests {
    @Test("a text file named .avi is reported as unreadable with libav's reason")
    func textFileNamedAVI() throws {
        let directory = try Fixtures.directory("text")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("holiday.avi")
        try Data(String(repeating: "Dear diary, today we went to the sea.\n", count: 200).utf8).write(to: input)
        let output = directory.appendingPathComponent("out.mp4")

        let error = #expect(throws: MediaError.self) {
            try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(30))
        }
        #expect(error?.kind == .unreadable)
        #expect(error?.description.contains("holiday.avi") == true)
        #expect(error?.description.contains("Invalid data found when processing input") == true, "\(String(describing: error))")
        #expect(error?.description.contains("\n") == false)
        #expect(!FileManager.default.fileExists(atPath: output.path))
        #expect(throws: MediaError.self) { try MediaProbe.probe(path: input.path) }
    }

    @Test("a zero-length file is reported as empty")
    func zeroLength() throws {
        let directory = try Fixtures.directory("empty")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("empty.dv")
        try Data().write(to: input)
        let error = #expect(throws: MediaError.self) {
            try Transcoder.transcode(input: input.path, output: directory.appendingPathComponent("out.mp4").path, profile: .h265, metadata: [:], timeLimit: .seconds(30))
        }
        #expect(error?.kind == .emptyFile)
        #expect(error?.description == "empty.dv is empty (0 bytes)")
    }

    @Test("a missing file carries av_strerror's text")
    func missingFile() throws {
        let error = #expect(throws: MediaError.self) {
            try Transcoder.transcode(input: "/nonexistent/tape.avi", output: "/tmp/never-written.mp4", profile: .h265, metadata: [:], timeLimit: nil)
        }
        #expect(error?.kind == .unreadable)
        #expect(error?.description.contains("No such file or directory") == true)
    }

    @Test("an audio-only file is not video")
    func audioOnly() throws {
        let directory = try Fixtures.directory("wav")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("voice.wav")
        try Fixtures.ffmpeg(Fixtures.sine() + ["-t", "0.5"], output: input)
        let error = #expect(throws: MediaError.self) {
            try Transcoder.transcode(input: input.path, output: directory.appendingPathComponent("out.mp4").path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(30))
        }
        #expect(error?.kind == .notVideo)
        #expect(error?.description.contains("has no video stream") == true)
    }

    @Test("a truncated DV file gives a best-effort output with the truncation reported")
    func truncatedDV() throws {
        let directory = try Fixtures.directory("truncated")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.ntsc, aspect: "4:3", seconds: 2, in: directory)
        let size = Fixtures.size(input)
        let handle = try FileHandle(forWritingTo: input)
        // Cut in the middle of a DV frame (120,000 bytes each), about 45% in.
        try handle.truncate(atOffset: UInt64(size * 45 / 100 + 7_777))
        try handle.close()
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.isDamaged)
        #expect(report.damage.contains { $0.contains("truncated") }, "\(report.damage)")
        #expect(report.frameCount > 10 && report.frameCount < 40)
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.codec_name == "h264")
        #expect((probe.video?.seconds ?? 0) < 1.5)
        // The output holds everything that could be decoded.
        try MediaProbe.verify(output: output.path, against: report)
        // The header still declares all 60 frames: that is how the damage was noticed.
        let claims = try MediaProbe.probe(path: input.path)
        #expect(claims.video?.declaredFrames == 60)
    }

    @Test("corrupted bytes in the middle of a transport stream: best effort, damage reported")
    func corruptedMiddle() throws {
        let directory = try Fixtures.directory("corrupt")
        defer { Fixtures.cleanUp(directory) }
        let input = directory.appendingPathComponent("broken.m2t")
        try Fixtures.ffmpeg(
            Fixtures.interlacedSource(width: 720, height: 576, fieldRate: "50", bottomFirst: false) + Fixtures.sine()
                + ["-t", "2", "-c:v", "mpeg2video", "-b:v", "8M", "-g", "12", "-c:a", "mp2", "-f", "mpegts"],
            output: input)
        var bytes = try Data(contentsOf: input)
        // Deterministic garbage over 64 KiB in the middle.
        var state: UInt32 = 12345
        let start = bytes.count / 2
        for offset in start..<(start + 65536) {
            state = state &* 1_103_515_245 &+ 12345
            bytes[offset] = UInt8(truncatingIfNeeded: state >> 16)
        }
        try bytes.write(to: input)
        let output = directory.appendingPathComponent("out.mp4")

        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))

        #expect(report.isDamaged, "damage must be reported")
        #expect(report.frameCount > 25)
        let probe = try Fixtures.probe(output)
        #expect(probe.video?.width == 720)
        #expect(probe.audio.count == 1)
    }

    @Test("the time limit stops a job and removes its partial output")
    func timeLimit() throws {
        let directory = try Fixtures.directory("time-limit")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.pal, aspect: "4:3", seconds: 2, in: directory)
        let output = directory.appendingPathComponent("out.mp4")
        let started = ContinuousClock.now
        let error = #expect(throws: MediaError.self) {
            try Transcoder.transcode(input: input.path, output: output.path, profile: .h265, metadata: [:], timeLimit: .milliseconds(300))
        }
        #expect(error?.kind == .timeLimitExceeded)
        #expect(error?.description.contains("time limit") == true)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test("verification fails when the output is shorter than the source or lacks an audio stream")
    func verificationFailures() throws {
        let directory = try Fixtures.directory("verify")
        defer { Fixtures.cleanUp(directory) }
        let input = try Fixtures.dv(.pal, aspect: "4:3", seconds: 1, in: directory)
        let output = directory.appendingPathComponent("out.mp4")
        let report = try Transcoder.transcode(input: input.path, output: output.path, profile: Fixtures.fastH264, metadata: [:], timeLimit: .seconds(60))
        try MediaProbe.verify(output: output.path, against: report)

        var longer = report.source
        for index in longer.streams.indices { longer.streams[index].decodedDuration? += 0.2 }
        let short = #expect(throws: MediaError.self) { try MediaProbe.verify(output: output.path, against: longer) }
        #expect(short?.kind == .verificationFailed)
        #expect(short?.description.contains("the video stream lasts") == true, "\(String(describing: short))")

        var twoTracks = report.source
        var extra = try #require(twoTracks.audioStreams.first)
        extra.index = 99
        twoTracks.streams.append(extra)
        let missing = #expect(throws: MediaError.self) { try MediaProbe.verify(output: output.path, against: twoTracks) }
        #expect(missing?.description.contains("audio stream 2 of 2 is missing") == true, "\(String(describing: missing))")

        // Not a media file at all.
        let text = directory.appendingPathComponent("note.mp4")
        try Data("not a video".utf8).write(to: text)
        #expect(throws: MediaError.self) { try MediaProbe.verify(output: text.path, against: report) }
    }
}
