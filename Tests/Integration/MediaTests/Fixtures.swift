import Foundation
import Media
import Testing

/// Test media made at test time with the ffmpeg CLI (short, small), and ffprobe to check outputs independently of
/// the code under test.
enum Fixtures {
    /// A fresh directory per call, removed by the caller with `cleanUp`.
    static func directory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("media-tests-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func cleanUp(_ url: URL) { try? FileManager.default.removeItem(at: url) }

    /// Runs a tool and returns its standard output; a non-zero exit fails with its standard error.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(message: "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: errData.suffix(2000), as: UTF8.self))")
        }
        return outData
    }

    /// The mean luma (0-255) of a region of the frame at `seconds`, e.g. "crop=40:ih:0:0" for the left edge.
    static func meanLuma(_ url: URL, at seconds: Double, region: String) throws -> Int {
        let pixel = try run("ffmpeg", [
            "-v", "error", "-ss", String(seconds), "-i", url.path, "-frames:v", "1", "-vf", "\(region),scale=1:1", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        ])
        return Int(pixel.first ?? 255)
    }

    /// `ffmpeg -y <arguments> <output>` with quiet logging.
    static func ffmpeg(_ arguments: [String], output: URL) throws {
        try run("ffmpeg", ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + arguments + [output.path])
    }

    /// Interlaced test video: a 2× rate progressive source woven into fields, so the fields really differ.
    static func interlacedSource(width: Int, height: Int, fieldRate: String, bottomFirst: Bool) -> [String] {
        ["-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=\(fieldRate),interlace=scan=\(bottomFirst ? "bff" : "tff")"]
    }

    static func sine(rate: Int = 48000, frequency: Int = 440, layout: String = "stereo") -> [String] {
        ["-f", "lavfi", "-i", "sine=frequency=\(frequency):sample_rate=\(rate),aformat=channel_layouts=\(layout)"]
    }

    enum DVSystem: String, Sendable, CaseIterable { case ntsc, pal }

    /// DV in AVI as camcorders and capture tools wrote it: NTSC 720×480 4:1:1 or PAL 720×576 4:2:0, bottom field
    /// first, 48 kHz stereo PCM.
    static func dv(_ system: DVSystem, aspect: String, seconds: Double, in directory: URL, name: String? = nil) throws -> URL {
        let url = directory.appendingPathComponent(name ?? "\(system.rawValue)-\(aspect.replacingOccurrences(of: ":", with: "x")).avi")
        let video = system == .ntsc
            ? interlacedSource(width: 720, height: 480, fieldRate: "60000/1001", bottomFirst: true)
            : interlacedSource(width: 720, height: 576, fieldRate: "50", bottomFirst: true)
        try ffmpeg(
            video + sine() + ["-t", String(seconds), "-c:v", "dvvideo", "-pix_fmt", system == .ntsc ? "yuv411p" : "yuv420p", "-aspect", aspect,
                "-c:a", "pcm_s16le"],
            output: url)
        return url
    }

    /// Decoded with ffprobe.
    static func probe(_ url: URL) throws -> ProbeResult {
        let data = try run("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-show_chapters", url.path])
        return try JSONDecoder().decode(ProbeResult.self, from: data)
    }

    /// Frames ffprobe counts by decoding the video stream.
    static func countFrames(_ url: URL) throws -> Int {
        let data = try run("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url.path])
        return Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    static func size(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? -1
    }

    /// The fast H.264 profile the tests use where the codec is not the point.
    static let fastH264: TranscodeProfile = {
        var profile = TranscodeProfile.h264
        profile.preset = "ultrafast"
        return profile
    }()
}

struct FixtureError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct ProbeResult: Decodable {
    struct Stream: Decodable {
        var index: Int
        var codec_name: String?
        var codec_type: String
        var codec_tag_string: String?
        var width: Int?
        var height: Int?
        var pix_fmt: String?
        var sample_aspect_ratio: String?
        var display_aspect_ratio: String?
        var field_order: String?
        var sample_rate: String?
        var channels: Int?
        var channel_layout: String?
        var duration: String?
        var tags: [String: String]?

        var seconds: Double? { duration.flatMap(Double.init) }
    }

    struct Format: Decodable {
        var format_name: String
        var duration: String?
        var tags: [String: String]?
        var seconds: Double? { duration.flatMap(Double.init) }
    }

    struct Chapter: Decodable {
        var start_time: String
        var end_time: String
        var tags: [String: String]?
    }

    var streams: [Stream]
    var format: Format
    var chapters: [Chapter]?

    var video: Stream? { streams.first { $0.codec_type == "video" } }
    var audio: [Stream] { streams.filter { $0.codec_type == "audio" } }
    /// Progressive, or not flagged as any interlaced order.
    var isProgressive: Bool {
        guard let order = video?.field_order else { return true }
        return !["tt", "bb", "tb", "bt"].contains(order)
    }
}
