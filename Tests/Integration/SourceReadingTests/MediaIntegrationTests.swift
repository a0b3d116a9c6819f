import Foundation
import Testing
@testable import SourceReading
import PipelineCore
import TestSupport

/// Real files made by the ffmpeg CLI at test time (tiny durations), classified from disk.
@Suite(.onOwnThreads)
struct MediaIntegrationTests {
    static let cases: [(file: String, arguments: [String], format: String)] = [
        ("pal.dv", ["-target", "pal-dv", "-f", "dv"], "dv"),
        ("clip.avi", ["-c:v", "mpeg4", "-f", "avi"], "avi"),
        ("mjpeg.avi", ["-c:v", "mjpeg", "-f", "avi"], "avi"),
        ("raw.mjpeg", ["-c:v", "mjpeg", "-f", "mjpeg"], "mjpeg"),
        ("VTS_01_1.VOB", ["-c:v", "mpeg2video", "-f", "vob"], "mpeg-ps"),
        ("clip.mpg", ["-c:v", "mpeg1video", "-f", "mpeg"], "mpeg-ps"),
        ("00001.MTS", ["-c:v", "mpeg2video", "-f", "mpegts"], "mpeg-ts"),
        ("clip.mov", ["-c:v", "mpeg4", "-f", "mov"], "quicktime"),
        ("clip.mp4", ["-c:v", "mpeg4", "-f", "mp4"], "mp4"),
        ("clip.3gp", ["-c:v", "h263", "-s", "176x144", "-f", "3gp"], "3gp"),
        ("clip.mkv", ["-c:v", "mpeg4", "-f", "matroska"], "matroska"),
        ("clip.webm", ["-c:v", "libvpx", "-f", "webm"], "webm"),
        ("clip.wmv", ["-c:v", "wmv2", "-f", "asf"], "asf"),
        ("clip.flv", ["-c:v", "flv", "-f", "flv"], "flv"),
    ]

    @Test(arguments: cases.indices)
    func classifiesRealFiles(index: Int) async throws {
        let (file, arguments, format) = Self.cases[index]
        let dir = try TemporaryDirectory()
        let output = dir.file(file)
        try run(#require(which("ffmpeg"), "ffmpeg is installed by scripts/test"), ["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                                   "testsrc=duration=0.2:size=320x240:rate=25"] + arguments + ["-y", output])
        let result = try await FileClassifier.classify(fileAt: RawPath(output))
        #expect(result.kind == .video, "\(file): \(result)")
        #expect(result.format == format, "\(file): \(result)")
        // The same content under a misleading name is still video.
        let renamed = dir.file("renamed.dat")
        try FileManager.default.moveItem(atPath: output, toPath: renamed)
        if format != "mjpeg" {
            #expect(try await FileClassifier.classify(fileAt: RawPath(renamed)).kind == .video, "\(file) renamed")
        }
    }

    @Test func audioOnlyAndStillsAreRegular() async throws {
        let dir = try TemporaryDirectory()
        let ffmpeg = try #require(which("ffmpeg"), "ffmpeg is installed by scripts/test")
        let wav = dir.file("tone.avi")
        try run(ffmpeg, ["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=0.2", "-f", "wav", "-y", wav])
        #expect(try await FileClassifier.classify(fileAt: RawPath(wav)).kind == .regular, "a WAV named .avi")
        let jpeg = dir.file("photo.jpg")
        try run(ffmpeg, ["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1", "-y", jpeg])
        #expect(try await FileClassifier.classify(fileAt: RawPath(jpeg)).kind == .regular)
    }

    @Test
    func classifiesARealISO() async throws {
        let dir = try TemporaryDirectory()
        try dir.write("content/readme.txt", "hello")
        let iso = dir.file("disc.iso")
        try run(#require(which("xorriso"), "xorriso is installed by scripts/test"), ["-as", "mkisofs", "-quiet", "-o", iso, "-J", "-R", dir.file("content")])
        let result = try await FileClassifier.classify(fileAt: RawPath(iso))
        #expect(result.kind == .discImage)
        #expect(result.format == "iso9660")
    }
}
