import Catalog
import Foundation
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// The formats people's old footage is in, made at test time with the ffmpeg CLI and sent through the real
/// uploader, transcoder and archiver: each is either converted (and its transcode plays for as long as the
/// original) or kept raw with a reason a person can read, and each comes back from the archive. Nothing is lost.
@Suite("old video formats corpus")
struct OldFormatsCorpusTests {
    static let seconds = 2.0

    /// name → ffmpeg arguments after the inputs (testsrc2 + two sine inputs are given first).
    static let corpus: [(name: String, source: String, arguments: [String])] = [
        ("dv-pal-4x3.dv", "720x576:rate=25", ["-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-aspect", "4:3", "-c:a", "pcm_s16le", "-ar", "48000", "-f", "dv"]),
        ("dv-pal-16x9.avi", "720x576:rate=25", ["-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-aspect", "16:9", "-c:a", "pcm_s16le", "-ar", "48000"]),
        ("dv-ntsc-4x3.avi", "720x480:rate=30000/1001", ["-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", "4:3", "-c:a", "pcm_s16le", "-ar", "48000"]),
        ("dv-ntsc-16x9.dv", "720x480:rate=30000/1001", ["-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", "16:9", "-c:a", "pcm_s16le", "-ar", "48000", "-f", "dv"]),
        ("hdv-1080i.m2t", "1440x1080:rate=25", [
            "-vf", "setfield=tff", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "8M", "-aspect", "16:9",
            "-c:a", "mp2", "-b:a", "384k", "-f", "mpegts",
        ]),
        ("avchd-1080i.mts", "1920x1080:rate=25", [
            "-vf", "setfield=tff", "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct", "-x264opts", "tff=1",
            "-c:a", "ac3", "-f", "mpegts", "-mpegts_m2ts_mode", "1",
        ]),
        ("mjpeg.avi", "640x480:rate=30", ["-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le"]),
        ("quicktime-mpeg4.mov", "320x240:rate=15", ["-c:v", "mpeg4", "-c:a", "pcm_s16be"]),
        ("quicktime-qtrle.mov", "320x240:rate=15", ["-c:v", "qtrle", "-c:a", "pcm_s16be"]),
        ("quicktime-cinepak.mov", "160x120:rate=15", ["-c:v", "cinepak", "-c:a", "pcm_s16be"]),
        ("phone-h263.3gp", "176x144:rate=15", ["-c:v", "h263", "-c:a", "aac", "-ar", "8000", "-ac", "1"]),
        ("windows-wmv2.wmv", "320x240:rate=25", ["-c:v", "wmv2", "-c:a", "wmav2"]),
        ("flash-flv1.flv", "320x240:rate=25", ["-c:v", "flv", "-c:a", "libmp3lame", "-ar", "44100"]),
        ("xvid-mp3.avi", "640x480:rate=25", ["-c:v", "mpeg4", "-vtag", "XVID", "-c:a", "libmp3lame"]),
        ("dvd-mpeg2-ac3.vob", "720x576:rate=25", ["-target", "pal-dvd", "-c:a", "ac3", "-aspect", "16:9"]),
    ]

    @Test("every old format is converted (its transcode as long as the original) or kept raw with a reason, and each comes back from the archive")
    func nothingLost() async throws {
        try await PipelineHarness.with(.file) { harness in
            var originals: [String: [UInt8]] = [:]
            for entry in Self.corpus {
                let path = harness.source.path + "/" + entry.name
                try TranscoderWorkerTests.ffmpeg([
                    "-f", "lavfi", "-i", "testsrc2=size=\(entry.source)", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-map", "0:v", "-map", "1:a", "-t", String(Self.seconds), "-ac", "2",
                ] + entry.arguments + [path])
                originals[entry.name] = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            }

            let upload = try await harness.upload(label: "Old tapes")
            #expect(upload.status == 0, "\(upload.output)")
            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output.suffix(3000))")
            let archived = try await harness.archiveOnce(environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.count == Self.corpus.count && rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            var outcomes: [String: String] = [:]
            for row in rows {
                #expect(row.kind == "video", "\(row.path) was not taken for a video")
                let converted = try await harness.scalar("SELECT details ? 'transcode' FROM objectstoragefiles WHERE id = \(row.id)", as: Bool.self) == true
                let reason = try await harness.scalar(
                    "SELECT coalesce(details->>'kept_raw', details->>'transcode_failed', '') FROM objectstoragefiles WHERE id = \(row.id)", as: String.self) ?? ""
                #expect(converted != !reason.isEmpty, "\(row.path): converted \(converted), reason '\(reason)'")
                outcomes[row.path] = converted ? "converted" : "kept raw: \(reason)"
            }
            // Every one of these plays in any player after conversion: none is expected to stay raw.
            #expect(outcomes.values.allSatisfy { $0 == "converted" }, "\(outcomes.sorted { $0.key < $1.key })")

            let restored = try await ArchivePromiseTests.restore(harness, source: "Old tapes")
            #expect(restored.status == 0, "\(restored.output)")
            for (name, bytes) in originals {
                let candidates = restored.files.filter { $0.key.hasPrefix("Old tapes/" + name) }
                if outcomes[name] != "converted" {
                    let back = candidates["Old tapes/" + name] == bytes
                    #expect(back, "\(name): kept raw but not restored byte for byte")
                    continue
                }
                let transcode = try #require(candidates.first?.value, "\(name): nothing restored (\(restored.files.keys.sorted()))")
                let copy = harness.work.path + "/restored-" + name + ".bin"
                _ = FileManager.default.createFile(atPath: copy, contents: Data(transcode))
                let probe = try await Subprocess.run("/usr/bin/env", [
                    "ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "compact", copy,
                ])
                let duration = probe.output.split(separator: "\n").first { $0.hasPrefix("format|") }.flatMap { Double($0.split(separator: "=").last ?? "") } ?? 0
                #expect(abs(duration - Self.seconds) < 0.25, "\(name): the transcode lasts \(duration) s (\(probe.output))")
                #expect(probe.output.contains("codec_type=video") && probe.output.contains("codec_type=audio"), "\(name): \(probe.output)")
            }
        }
    }
}
