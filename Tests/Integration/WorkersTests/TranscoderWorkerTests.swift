import Catalog
import Foundation
import ObjectStore
import PipelineCore
import Testing
import TestSupport
import SystemIO

/// The real `transcoder` worker between the real `uploader` and `archiver`, with fixtures made by the ffmpeg CLI.
@Suite("transcoder worker", .onOwnThreads)
struct TranscoderWorkerTests {
    static func ffmpeg(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + arguments
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "ffmpeg \(arguments)")
    }

    @Test("a DV tape is transcoded, verified and archived; a fake video is archived as a regular file; staging ends empty")
    func transcodeThenArchive() async throws {
        try await PipelineHarness.with(.file) { harness in
            try FileManager.default.createDirectory(atPath: harness.source.path + "/tapes", withIntermediateDirectories: true)
            let tape = harness.source.path + "/tapes/birthday 1999.avi"
            try Self.ffmpeg([
                "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "1", "-vf", "setfield=bff", "-c:v", "dvvideo", "-pix_fmt", "yuv411p", "-aspect", "4:3",
                "-c:a", "pcm_s16le", "-ac", "2", tape,
            ])
            // RIFF/AVI magic and then nothing a demuxer can use: the uploader calls it a video, libav disagrees.
            try harness.write("tapes/broken.avi", Array("RIFF\u{10}\0\0\0AVI LIST".utf8) + PipelineHarness.bytes(count: 4000, seed: 3))
            try harness.write("notes.txt", "what is on the tapes\n")
            let upload = try await harness.upload(label: "Tapes")
            #expect(upload.status == 0, "\(upload.output)")
            let kinds = Dictionary(uniqueKeysWithValues: try await harness.rows().map { ($0.path, $0.kind) })
            #expect(kinds["tapes/birthday 1999.avi"] == "video")

            let transcoded = try await harness.transcodeOnce()
            #expect(transcoded.status == 0, "\(transcoded.output)")
            // The 1-second transcode (~170 kB) is stored alone with a 100 KiB threshold, so it can be probed directly.
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")

            let rows = try await harness.rows()
            #expect(rows.allSatisfy { $0.state == "archived" }, "\(rows.map { ($0.path, $0.state, $0.error) })")
            let video = try #require(rows.first { $0.path == "tapes/birthday 1999.avi" })
            #expect(video.kind == "video")
            #expect(video.storageKey?.hasSuffix(".mp4") == true, "\(transcoded.output)")
            let codec = try await harness.scalar("SELECT details->'transcode'->>'video_codec' FROM objectstoragefiles WHERE id = \(video.id)", as: String.self)
            #expect(codec == "h264")
            let deinterlaced = try await harness.scalar("SELECT details->'transcode'->>'deinterlaced' FROM objectstoragefiles WHERE id = \(video.id)", as: String.self)
            #expect(deinterlaced == "true")
            let stored = try #require(try await harness.scalar("SELECT stored_size_bytes FROM objectstoragefiles WHERE id = \(video.id)", as: Int64.self))
            #expect(stored < video.size / 5, "the transcode (\(stored) bytes) should be far smaller than raw DV (\(video.size))")

            // The archived object is a real, playable H.264 file of the right length (checked by ffprobe).
            let bytes = try await harness.archive.getBytes(try #require(video.storageKey), limit: 64 << 20)
            let copy = harness.work.path + "/archived.mp4"
            try Data(bytes).write(to: URL(fileURLWithPath: copy))
            let probe = try await Subprocess.run("/usr/bin/env", [
                "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,field_order:format=duration",
                "-of", "default=noprint_wrappers=1", copy,
            ])
            #expect(probe.output.contains("codec_name=h264"), "\(probe.output)")
            #expect(probe.output.contains("field_order=progressive"), "\(probe.output)")

            let broken = try #require(rows.first { $0.path == "tapes/broken.avi" })
            #expect(broken.kind == "regular")
            #expect(try await harness.scalar("SELECT details->>'reclassified' FROM objectstoragefiles WHERE id = \(broken.id)", as: String.self) != nil)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "raw or transcoded copies left in staging")
        }
    }
}
